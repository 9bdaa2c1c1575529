// Package rollout is how regctl puts new settings into effect: it
// renders them (reconfigure.Run) and brings the daemon serving the
// rendered config.yml up to date (service.Apply), reloading it, or
// restarting it when it is regctl start's and a reload cannot apply the
// change. reconfigure, registry-readonly and the storage cutover all go
// through it, so they agree on when a daemon reloads and when it
// restarts.
package rollout

import (
	"context"

	"regctl/pkg/reconfigure"
	"regctl/pkg/service"
	"regctl/pkg/settings"
)

// Options are Run's.
type Options struct {
	// DryRun renders nothing and touches no daemon: Result.Render says
	// what would change.
	DryRun bool
	// Apply says how far the daemon may be taken (service.ApplyOptions).
	Apply service.ApplyOptions
}

// Result is what Run did.
type Result struct {
	Render *reconfigure.Result
	// Daemon is how the daemon took the new config.yml, nil in a dry run.
	// A daemon that could not be brought up to date does not fail Run:
	// Daemon.Error says why, and Daemon.Err() is the error.
	Daemon *service.ApplyResult
}

// Run renders the settings and applies them to the running daemon. Its
// error is a failure to render (nothing is applied then); a failure to
// apply is in Result.Daemon.
func Run(ctx context.Context, l *settings.Loaded, opts Options) (*Result, error) {
	svc := service.New(l.Resolve())
	// config.yml as the daemon may be running it, to tell a reload from a
	// restart once reconfigure has replaced it.
	old, err := svc.ReadConfig()
	if err != nil {
		return nil, err
	}
	rendered, err := reconfigure.Run(l, reconfigure.Options{DryRun: opts.DryRun})
	if err != nil {
		return nil, err
	}
	res := &Result{Render: rendered}
	if !opts.DryRun {
		res.Daemon, _ = svc.Apply(ctx, old, opts.Apply)
	}
	return res, nil
}

// ReloadOnly is Run for a job that must never restart the daemon (the
// storage cutover): it renders l and reloads the daemon, reporting in
// NeedsRestart what only a restart applies. Its error is the render's or
// the daemon's.
func ReloadOnly(ctx context.Context, l *settings.Loaded) (*service.ApplyResult, error) {
	res, err := Run(ctx, l, Options{Apply: service.ApplyOptions{ReloadOnly: true}})
	if err != nil {
		return nil, err
	}
	return res.Daemon, res.Daemon.Err()
}
