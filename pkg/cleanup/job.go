package cleanup

import (
	"context"

	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// Command is a cleanup's name in the run lock and in messages.
const Command = "registry-cleanup"

// Run cleans every repository of the catalog a policy applies to. A
// failure in one repository is recorded in its entry and the others go
// on; the error is only for what stops the whole run (the catalog cannot
// be listed, ctx is cancelled, the run lock is lost).
//
// Unless it is a dry run, it runs as a maintenance job
// (maintenance.RunJob) under the run lock of opts.Storage: it fails
// with maintenance.ErrRunInProgress while another cleanup or GC holds
// it, releases it however it ends, and stops, with an error wrapping
// maintenance.ErrLost, if it loses it. The daemons stay writable: the
// cleanup deletes through them.
func Run(ctx context.Context, cl *Client, opts Options) (*Report, error) {
	if opts.DryRun || opts.Storage == nil {
		return run(ctx, cl, opts)
	}
	drv, err := storage.Open(ctx, opts.Storage.Driver, opts.Storage.Params)
	if err != nil {
		return nil, err
	}
	var rep *Report
	job := maintenance.Job{Command: Command, Driver: drv, RunLock: opts.Storage, Log: opts.Log}
	_, err = maintenance.RunJob(ctx, job, func(ctx context.Context, _ *maintenance.Lease) error {
		var err error
		rep, err = run(ctx, cl, opts)
		return err
	})
	return rep, err
}
