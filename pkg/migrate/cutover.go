package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/service"
	"regctl/pkg/settings"
	"regctl/pkg/storage"
)

// CutoverOptions configure Cutover. The embedded Options give the
// target, the concurrency and the callbacks; SourceRoot defaults to the
// settings' filesystem root.
type CutoverOptions struct {
	Options
	// Settings is the settings file, on the filesystem storage.
	Settings *settings.Loaded
	// StorageS3 becomes [registry.storage.s3]: [migration.s3] with the
	// command line's overrides.
	StorageS3 map[string]any
	// VerifyMode is VerifyFull (default) or VerifyQuick.
	VerifyMode string
	// ReadOnlyTimeout bounds the wait for every regctl daemon on the
	// source to switch to read-only (default 2 minutes).
	ReadOnlyTimeout time.Duration
	// Heartbeat is the daemons' heartbeat interval; when 0, the one they
	// use: regctl.cluster.heartbeat of the settings' config.yml, which
	// REGCTL_CLUSTER_HEARTBEAT overrides (maintenance.ClusterHeartbeat).
	Heartbeat time.Duration
	// Apply renders the settings it is given and reloads the regctl
	// serve running on their config.yml, never restarting it
	// (rollout.ReloadOnly, passed in so that this package does not
	// depend on rendering); required.
	Apply func(context.Context, *settings.Loaded) (*service.ApplyResult, error)
	// Step, when set, is told each step as it starts and as it ends.
	Step func(Step)
}

// configHeartbeat is the heartbeat interval of the daemons serving
// config: its regctl.cluster.heartbeat, unless REGCTL_CLUSTER_HEARTBEAT
// overrides it, as for registry-garbage-collect.
func configHeartbeat(config string, log *slog.Logger) (time.Duration, error) {
	cfg, err := distconfig.Load(config, log)
	if err != nil {
		return 0, fmt.Errorf("cutover: the daemons' heartbeat: %w", err)
	}
	return maintenance.ClusterHeartbeat(cfg.Cluster)
}

// Step is one step of a cutover.
type Step struct {
	// Name is sync, read-only, final-sync, verify, switch, retire or
	// rollback.
	Name string `json:"name"`
	// Status is running, ok or failed.
	Status   string        `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// CutoverResult is what a cutover did.
type CutoverResult struct {
	Settings  string        `json:"settings"`
	Config    string        `json:"config"`
	Steps     []Step        `json:"steps"`
	Sync      *Result       `json:"sync,omitempty"`
	FinalSync *Result       `json:"final_sync,omitempty"`
	Verify    *VerifyResult `json:"verify,omitempty"`
	// Nodes counts the regctl daemons that switched to read-only.
	Nodes int `json:"nodes"`
	// DaemonPID is the regctl serve told to reload, 0 when none runs.
	DaemonPID int `json:"daemon_pid,omitempty"`
	// RestartNeeded is set after a switch while a regctl serve runs: it
	// keeps serving the old storage, read-only, until restarted.
	RestartNeeded bool   `json:"restart_needed"`
	RolledBack    bool   `json:"rolled_back"`
	Error         string `json:"error,omitempty"`
}

// Cutover runs the admin guide's migration to object storage in one go:
//
//  1. sync while the registry stays writable;
//  2. read-only: in the settings (reconfigure, daemon reload), and with
//     the maintenance lease on the source, so that every regctl daemon
//     serving it refuses writes and has none in flight;
//  3. final sync with delete;
//  4. verify;
//  5. switch the settings' storage to s3, read-write, reconfigure and
//     reload;
//  6. retire the source: the lease stays for good, so a daemon still
//     serving the old storage (until it is restarted on the new one)
//     keeps refusing writes that nobody would ever see.
//
// Steps 3 to 6 run as a maintenance job (maintenance.RunJob) under the
// lease. Any failure from step 2 on rolls back: the job releases the
// lease, the settings file gets its original bytes back, reconfigure and
// reload run, so the registry is on the filesystem and writable as
// before; the source is only ever read, so nothing is lost.
func Cutover(ctx context.Context, opts CutoverOptions) (*CutoverResult, error) {
	l := opts.Settings
	if l == nil {
		return nil, errors.New("cutover: no settings")
	}
	if d := settings.StorageDriver(l.Settings.Registry.Storage); d != "filesystem" {
		return nil, fmt.Errorf("cutover: the settings' storage is %s: only a filesystem storage can be cut over", d)
	}
	if len(opts.StorageS3) == 0 {
		return nil, errors.New("cutover: no [migration.s3] settings to switch to")
	}
	if opts.Apply == nil {
		return nil, errors.New("cutover: no Apply")
	}
	paths := l.Resolve()
	if opts.SourceRoot == "" {
		opts.SourceRoot = paths.StorageRoot
	}
	if opts.VerifyMode == "" {
		opts.VerifyMode = VerifyFull
	}
	if opts.ReadOnlyTimeout <= 0 {
		opts.ReadOnlyTimeout = 2 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = discard()
	}
	if opts.Heartbeat <= 0 {
		hb, err := configHeartbeat(paths.ConfigYML, opts.Log)
		if err != nil {
			return nil, err
		}
		opts.Heartbeat = hb
	}
	res := &CutoverResult{Settings: l.Path, Config: paths.ConfigYML}
	c := &cutover{opts: opts, res: res, cur: l, original: l.Source, config: paths.ConfigYML}

	syncOpts := opts.Options
	syncOpts.Delete, syncOpts.DryRun = false, false
	err := c.step(ctx, "sync", func(ctx context.Context) (string, error) {
		r, err := Sync(ctx, syncOpts)
		res.Sync = r
		if r == nil {
			return "", err
		}
		if err == nil && r.Symlinks > 0 {
			// Verify would fail on them, after a read-only spell: stop
			// while the registry is still writable.
			err = fmt.Errorf("the source holds %d symbolic links (%s): they are never followed, so what they point at would not move; replace each with what it points at, or remove it, then run --cutover again",
				r.Symlinks, strings.Join(r.SymlinkPaths, ", "))
		}
		return fmt.Sprintf("%d copied, %d unchanged, while writable", r.Copied, r.Unchanged), err
	})
	if err != nil {
		// Nothing changed yet but the bucket: no rollback needed.
		res.Error = err.Error()
		return res, err
	}
	if err := c.rest(ctx); err != nil {
		res.Error = err.Error()
		if rerr := c.rollback(ctx); rerr != nil {
			err = fmt.Errorf("%w; ROLLBACK FAILED: %w", err, rerr)
			res.Error = err.Error()
			return res, err
		}
		res.RolledBack = true
		return res, err
	}
	return res, nil
}

type cutover struct {
	opts     CutoverOptions
	res      *CutoverResult
	cur      *settings.Loaded // the settings as last written
	original []byte
	config   string
	// applied is what the last apply did; nil when it failed to render.
	applied *service.ApplyResult
}

// step runs one step and reports it.
func (c *cutover) step(ctx context.Context, name string, fn func(context.Context) (string, error)) error {
	end := c.begin(name)
	return end(fn(ctx))
}

// begin reports that step name starts; end reports how it ended and
// returns its error, prefixed with its name.
func (c *cutover) begin(name string) (end func(detail string, err error) error) {
	start := time.Now()
	if c.opts.Step != nil {
		c.opts.Step(Step{Name: name, Status: "running"})
	}
	return func(detail string, err error) error {
		return c.ended(name, start, detail, err)
	}
}

func (c *cutover) ended(name string, start time.Time, detail string, err error) error {
	st := Step{Name: name, Status: "ok", Detail: detail, Duration: time.Since(start)}
	if err != nil {
		st.Status = "failed"
		if st.Detail == "" {
			st.Detail = err.Error()
		} else {
			st.Detail += ": " + err.Error()
		}
	}
	c.res.Steps = append(c.res.Steps, st)
	if c.opts.Step != nil {
		c.opts.Step(st)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// apply renders the settings as last written and tells the daemon on
// the rendered config to re-read it.
func (c *cutover) apply(ctx context.Context) (string, error) {
	a, err := c.opts.Apply(ctx, c.cur)
	c.applied = a
	if err != nil {
		return "", err
	}
	c.res.DaemonPID = a.PID
	if a.PID == 0 {
		return "no regctl serve runs on " + c.config, nil
	}
	return fmt.Sprintf("regctl serve (pid %d) reloaded", a.PID), nil
}

// rest is steps 2 to 6; its failure is rolled back.
//
// Steps 3 to 6 run as a maintenance job (maintenance.RunJob) on the
// source: under its lease, once every regctl daemon serving it has
// acknowledged it, which ends step 2. The job releases the lease when a
// step fails or ctx ends, before the rollback; step 6 retires it
// instead.
func (c *cutover) rest(ctx context.Context) error {
	o := c.opts
	log := o.Log
	endReadOnly := c.begin("read-only")
	reloaded, err := c.settingsReadOnly(ctx)
	if err != nil {
		return endReadOnly("", err)
	}
	src, err := storage.NewFilesystem(o.SourceRoot)
	if err != nil {
		return endReadOnly("", err)
	}
	readOnly := false
	job := maintenance.Job{
		Command: "migrate-storage",
		Driver:  src,
		ReadOnly: &maintenance.ReadOnly{
			Reason:     "storage cutover to S3",
			Interval:   o.Heartbeat,
			AckTimeout: o.ReadOnlyTimeout,
			OnReadOnly: func(wr maintenance.WaitResult) {
				readOnly = true
				c.res.Nodes = wr.Acked
				if wr.NoDaemons() {
					log.Warn("no regctl daemon heartbeats on the source storage: any other registry writing to it must be stopped or read-only")
					endReadOnly(reloaded+"; no regctl daemon heartbeats on the storage", nil)
					return
				}
				endReadOnly(fmt.Sprintf("%s; %d regctl daemons read-only", reloaded, wr.Acked), nil)
			},
		},
		TTL: maintenance.DefaultLeaseTTL,
		Log: log,
	}
	_, err = maintenance.RunJob(ctx, job, c.underLease)
	if err != nil && !readOnly {
		return endReadOnly("", err)
	}
	return err
}

// settingsReadOnly is the first half of step 2: the settings read-only,
// rendered, and the daemon reloaded.
func (c *cutover) settingsReadOnly(ctx context.Context) (string, error) {
	updated, _, err := settings.SetReadOnly(c.cur, true)
	if err != nil {
		return "", err
	}
	c.cur = updated
	return c.apply(ctx)
}

// underLease is steps 3 to 6, while every regctl daemon on the source
// is read-only: ctx ends if the lease is lost.
func (c *cutover) underLease(ctx context.Context, lease *maintenance.Lease) error {
	o := c.opts
	final := o.Options
	final.Delete, final.DryRun = true, false
	err := c.step(ctx, "final-sync", func(ctx context.Context) (string, error) {
		r, err := Sync(ctx, final)
		c.res.FinalSync = r
		if err == nil {
			err = lease.Err() // writes may have resumed: the copy is not final
		}
		if r == nil {
			return "", err
		}
		return fmt.Sprintf("%d copied, %d deleted, read-only", r.Copied, r.Deleted), err
	})
	if err != nil {
		return err
	}

	vo := o.Options
	vo.DryRun, vo.Delete = false, false
	err = c.step(ctx, "verify", func(ctx context.Context) (string, error) {
		vr, err := Verify(ctx, vo, o.VerifyMode)
		c.res.Verify = vr
		if err != nil {
			return "", err
		}
		if !vr.OK() {
			return "", fmt.Errorf("%d missing, %d extra, %d size, %d content, %d digest mismatches, %d markers, %d unreadable, %d symbolic links",
				vr.Missing, vr.Extra, vr.Size, vr.Content, vr.Digest, vr.Markers, vr.Errors, vr.Symlinks)
		}
		if err := lease.Err(); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %d objects match", vr.Mode, vr.SourceObjects), nil
	})
	if err != nil {
		return err
	}

	err = c.step(ctx, "switch", func(ctx context.Context) (string, error) {
		note := fmt.Sprintf("regctl migrate-storage --cutover moved the storage to %s on %s; it was:",
			storage.Describe(o.Target), time.Now().UTC().Format(time.RFC3339))
		updated, err := settings.SwitchStorageToS3(c.cur, o.StorageS3, note)
		if err != nil {
			return "", err
		}
		c.cur = updated
		if updated, _, err = settings.SetReadOnly(c.cur, false); err != nil {
			return "", err
		}
		c.cur = updated
		reloaded, err := c.apply(ctx)
		if err != nil {
			return "", err
		}
		// The daemon keeps serving the old storage until restarted.
		c.res.RestartNeeded = c.res.DaemonPID != 0 && len(c.applied.NeedsRestart) > 0
		return "settings on s3, read-write; " + reloaded, nil
	})
	if err != nil {
		return err
	}

	return c.step(ctx, "retire", func(ctx context.Context) (string, error) {
		reason := "the storage moved to " + storage.Describe(o.Target) + " (regctl migrate-storage --cutover): restart regctl serve on the new config"
		if err := lease.Retire(ctx, reason); err != nil {
			return "", err
		}
		return "the filesystem storage stays read-only for every regctl daemon still on it", nil
	})
}

// rollback puts the settings back as they were, renders and reloads
// them (the job released the lease already). It runs even when ctx was
// cancelled (Ctrl-C), with a time limit of its own.
func (c *cutover) rollback(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return c.step(ctx, "rollback", func(ctx context.Context) (string, error) {
		var errs []error
		restored, err := settings.RestoreSettings(c.cur, c.original)
		if err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", c.cur.Path, err))
		} else {
			c.cur = restored
			if _, err := c.apply(ctx); err != nil {
				step := "reload"
				if c.applied == nil {
					step = "reconfigure" // nothing was applied
				}
				errs = append(errs, fmt.Errorf("%s: %w", step, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		return "settings restored, filesystem storage writable again", nil
	})
}
