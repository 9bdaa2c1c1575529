// Package gcjob runs a garbage collection as a maintenance job: the
// collector of pkg/gc under the run lock and the maintenance lease
// (pkg/maintenance.RunJob), the shared cache flushed after it, and the
// run's figures left in the storage for the daemons' metrics
// (pkg/gcreport). pkg/gc stays a collector that knows nothing of
// daemons, locks or caches; the command only wires flags and prints.
package gcjob

import (
	"context"
	"log/slog"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/gc"
	"regctl/pkg/gcreport"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// Command is the job's name in locks, leases and messages.
const Command = "registry-garbage-collect"

// Options tune Run.
type Options struct {
	// Collect are the collector's options (RemoveUntagged, DryRun and
	// the callbacks). A dry run deletes nothing, so it takes no lock,
	// no lease, and flushes nothing.
	Collect gc.Options
	// Storage is the storage's config: its run lock keeps other
	// cleanups and collections out.
	Storage distconfig.Storage
	// Heartbeat is the daemons' heartbeat interval.
	Heartbeat time.Duration
	// AckTimeout bounds the wait for the daemons to switch to
	// read-only; LeaseTTL is how long the lease and the run lock
	// outlive a run that dies (see maintenance.Job).
	AckTimeout, LeaseTTL time.Duration
	// FlushAfter runs the collection and then flushes the shared blob
	// descriptor cache (blobcache.FlushAfter bound to it); nil when there
	// is no shared cache.
	FlushAfter func(ctx context.Context, work func(context.Context) error) (int, error)
	// OnReadOnly is told which daemons switched, before the collection.
	OnReadOnly func(maintenance.WaitResult)
	// Collected, when set, is called as soon as the collector returns,
	// before the flush and the release: the command ends its progress
	// line there.
	Collected func()
	// Log gets the job's warnings; nil discards.
	Log *slog.Logger
}

// Result is what a run did.
type Result struct {
	// Report is the collector's, nil when it never ran.
	Report *gc.Report
	// Daemons counts the regctl daemons that switched to read-only; nil
	// for a dry run, or when the run failed before they switched.
	Daemons *int
	// CacheFlushed counts the keys removed from the shared cache.
	CacheFlushed int
}

// Run collects the garbage of drv. Unless it is a dry run, every regctl
// daemon on drv is read-only while the collector deletes (pulls go on),
// and takes writes again when Run returns, whether the collection
// succeeded, failed, or ctx ended (Ctrl-C). The run's figures go into
// the storage (gcreport) before the daemons take writes again, so that
// their metrics show it when they see the run end.
func Run(ctx context.Context, drv storage.Driver, opts Options) (Result, error) {
	var res Result
	started := time.Now()
	job := maintenance.Job{
		Command: Command,
		Driver:  drv,
		Log:     opts.Log,
		Record: func(err error) {
			gcreport.Record(drv, opts.Log, gcreport.New(res.Report, opts.Collect.RemoveUntagged, opts.Collect.DryRun, started, time.Now(), err))
		},
	}
	if !opts.Collect.DryRun {
		job.RunLock = &opts.Storage
		job.TTL = opts.LeaseTTL
		job.ReadOnly = &maintenance.ReadOnly{
			Reason:     "garbage collection",
			Interval:   opts.Heartbeat,
			AckTimeout: opts.AckTimeout,
			OnReadOnly: opts.OnReadOnly,
		}
		// The whole regctl namespace of the cache is flushed, not each
		// deleted digest: simple, and safe whatever GC deleted (a layer
		// link, a revision, a blob others linked).
		job.FlushAfter = opts.FlushAfter
	}
	jr, err := maintenance.RunJob(ctx, job, func(ctx context.Context, _ *maintenance.Lease) error {
		var err error
		res.Report, err = gc.Run(ctx, drv, opts.Collect)
		if opts.Collected != nil {
			opts.Collected()
		}
		return err
	})
	if jr.ReadOnly != nil {
		res.Daemons = &jr.ReadOnly.Acked
	}
	res.CacheFlushed = jr.Flushed
	return res, err
}
