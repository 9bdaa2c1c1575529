package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

// Job is a maintenance job for RunJob: what it locks, whether the
// regctl daemons must be read-only while it works, and the hooks RunJob
// calls on the way. The zero Job locks nothing and just runs the work
// (a dry run).
type Job struct {
	// Command names the job, "registry-garbage-collect": it is the
	// holder of the run lock, and in the holder of the lease
	// (Holder(Command)).
	Command string
	// Driver is the storage the job works on.
	Driver storage.Driver
	// RunLock, when set, is the storage whose run lock the job holds
	// from start to end (LockRuns): one cleanup or GC at a time.
	RunLock *distconfig.Storage
	// ReadOnly, when set, makes every regctl daemon on Driver refuse
	// writes while the work runs: the maintenance lease, and the wait
	// for each live daemon's acknowledgement.
	ReadOnly *ReadOnly
	// TTL is how long the run lock and the lease outlive a job that
	// died without releasing them; both are renewed every third of it
	// while the job runs. DefaultLeaseTTL when 0.
	TTL time.Duration
	// FlushAfter, when set, runs the work and then empties the caches
	// in front of the storage, so that no node answers for what the
	// work deleted; it returns how many keys it removed. It runs under
	// the lock and the lease, after the acknowledgements, and should
	// refuse to run the work when it could not flush afterwards.
	// blobcache.FlushAfter bound to the shared cache is one.
	FlushAfter func(ctx context.Context, work func(context.Context) error) (flushed int, err error)
	// Record, when set, is told once how the job ended (nil on success)
	// while the lock and lease are still held, so that daemons find the
	// record when they take writes again. It is called for failures
	// before the work too, but not when the run lock is refused: then
	// another run is working.
	Record func(error)
	// Log gets the wait for the daemons and trouble releasing; nil
	// discards.
	Log *slog.Logger
}

// ReadOnly is what a Job that needs the daemons read-only tells them.
type ReadOnly struct {
	// Reason goes into the lease, for `status` and the 405s.
	Reason string
	// Interval is the daemons' heartbeat interval: how often their
	// heartbeats are polled and when one counts as gone. HeartbeatEnv,
	// else DefaultHeartbeat, when 0.
	Interval time.Duration
	// AckTimeout bounds the wait for the daemons to switch (2 minutes
	// when 0): after it the job fails with ErrNotAcknowledged.
	AckTimeout time.Duration
	// OnReadOnly, when set, is told who acknowledged, before the work
	// starts.
	OnReadOnly func(WaitResult)
}

// Work is a job's own part. ctx ends when the job must stop: the
// caller's context ended (Ctrl-C), or the run lock or the lease was
// lost (context.Cause wraps ErrLost). lease is the job's maintenance
// lease, nil without ReadOnly; the work may Retire it, and then it is
// kept instead of released.
type Work func(ctx context.Context, lease *Lease) error

// JobResult is what RunJob did besides the work.
type JobResult struct {
	// ReadOnly is who acknowledged the lease; nil when the job took no
	// lease or failed before the daemons switched.
	ReadOnly *WaitResult
	// Flushed counts the cache keys FlushAfter removed.
	Flushed int
}

// ErrNotAcknowledged is returned when a live daemon did not switch to
// read-only in time: the job does not run.
var ErrNotAcknowledged = errors.New("not every regctl daemon switched to read-only in time")

// RunJob runs work as a maintenance job, in the one order every job
// follows:
//
//  1. take the run lock of job.RunLock, without waiting (ErrRunInProgress);
//  2. with job.ReadOnly, take the maintenance lease and wait until every
//     live daemon has acknowledged it (ErrNotAcknowledged);
//  3. run work, through job.FlushAfter when set, under a context that
//     ends if the lock or the lease is lost;
//  4. tell job.Record how it went;
//  5. release the lease, wait a few heartbeats for the daemons to take
//     writes again, and release the run lock.
//
// Step 5 runs however the job ends: success, failure, a cancelled ctx
// (Ctrl-C), a panic; it uses a context of its own, so that a cancelled
// job does not keep the cluster read-only. When the lock or the lease
// was lost while the work ran, the error says so and wraps ErrLost,
// even if the work did not notice.
func RunJob(ctx context.Context, job Job, work Work) (res JobResult, err error) {
	log := job.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ttl := job.TTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	var ro ReadOnly
	if job.ReadOnly != nil {
		if job.Driver == nil {
			return res, fmt.Errorf("%s: a read-only job needs the storage driver", job.Command)
		}
		ro = *job.ReadOnly
		if ro.Interval <= 0 {
			if ro.Interval, err = HeartbeatFromEnv(); err != nil {
				return res, err
			}
		}
		if ro.AckTimeout <= 0 {
			ro.AckTimeout = 2 * time.Minute
		}
	}
	recorded := false
	record := func(err error) {
		if job.Record != nil && !recorded {
			recorded = true
			job.Record(err)
		}
	}

	if job.RunLock != nil {
		lock, err := LockRuns(ctx, *job.RunLock, job.Driver, job.Command, ttl)
		if err != nil {
			return res, err
		}
		defer func() {
			if rerr := lock.Release(); rerr != nil {
				log.Warn("the run lock stays until it expires", "err", rerr)
			}
		}()
		var unbind context.CancelFunc
		ctx, unbind = lock.Bind(ctx)
		defer unbind()
	}

	var lease *Lease
	if job.ReadOnly != nil {
		lease, err = Acquire(ctx, job.Driver, Holder(job.Command), ro.Reason, ttl)
		if err != nil {
			record(err)
			return res, err
		}
		lctx := ctx
		defer func() {
			if rerr := releaseLease(lctx, job.Driver, lease, ro.Interval); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}()
		wr, err := waitAcks(ctx, job.Driver, lease, ro, log)
		if err != nil {
			record(err)
			return res, err
		}
		res.ReadOnly = &wr
		if ro.OnReadOnly != nil {
			ro.OnReadOnly(wr)
		}
		var unbind context.CancelFunc
		ctx, unbind = stopOnLoss(ctx, lease.Lost(), lease.Err)
		defer unbind()
	}

	run := func(ctx context.Context) error { return work(ctx, lease) }
	if job.FlushAfter != nil {
		res.Flushed, err = job.FlushAfter(ctx, run)
	} else {
		err = run(ctx)
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrLost) {
		err = lostDuring(cause, err)
	}
	record(err)
	return res, err
}

// waitAcks is WaitForReadOnly bounded by ro.AckTimeout on the clock of
// ctx.
func waitAcks(ctx context.Context, drv storage.Driver, lease *Lease, ro ReadOnly, log *slog.Logger) (WaitResult, error) {
	wctx, cancel := withTimeout(ctx, ro.AckTimeout)
	defer cancel()
	res, err := WaitForReadOnly(wctx, drv, lease, ro.Interval, log)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), context.DeadlineExceeded) {
		return res, fmt.Errorf("%w (waited %s for %d of %d live nodes: %s)", ErrNotAcknowledged, ro.AckTimeout, len(res.Pending), res.Live, strings.Join(res.Pending, ", "))
	}
	return res, err
}

// withTimeout is context.WithTimeout on the clock of ctx: the context
// ends d from now, with context.DeadlineExceeded as its cause.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := clockOf(ctx).NewTimer(d)
	go func() {
		select {
		case <-t.C():
			cancel(context.DeadlineExceeded)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// stopOnLoss returns a context that ends, with why() as its cause,
// once lost is closed: work under it stops rather than go on
// unprotected. A nil lost never closes.
func stopOnLoss(ctx context.Context, lost <-chan struct{}, why func() error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if lost != nil {
		go func() {
			select {
			case <-lost:
				cancel(fmt.Errorf("stopped: %w", why()))
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

// lostDuring is the error of work that ran while the lock or lease was
// lost (cause): the loss, and what the work said unless it only
// reports being stopped by it.
func lostDuring(cause, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return cause
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// releaseLease releases the job's lease with a context of its own (Ctrl-C
// must not keep the cluster read-only) and gives the daemons a few
// heartbeats to take writes again. A retired lease stays.
func releaseLease(ctx context.Context, drv storage.Driver, lease *Lease, interval time.Duration) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if lease.retired() {
		return nil
	}
	if err := lease.Release(rctx); err != nil {
		return fmt.Errorf("releasing the maintenance lease (it expires by itself at %s): %w",
			lease.Info().Expires.Local().Format(time.RFC3339), err)
	}
	waitReleased(rctx, drv, lease.Info().Ack(), interval)
	return nil
}

// waitReleased gives the daemons a few heartbeats to take writes again,
// so that the registry is writable when the command returns, as it is
// after gitlab-ctl restarts it. It is best effort: a node that is slow
// to notice catches up on its next poll anyway.
func waitReleased(ctx context.Context, drv storage.Driver, ack string, interval time.Duration) {
	clk := clockOf(ctx)
	deadline := clk.Now().Add(3 * interval)
	for clk.Now().Before(deadline) {
		nodes, err := Nodes(ctx, drv, interval)
		if err != nil {
			return
		}
		pending := false
		for _, n := range nodes {
			if !n.Gone && n.MaintenanceAck == ack {
				pending = true
			}
		}
		if !pending {
			return
		}
		if clock.Sleep(ctx, clk, interval/4) != nil {
			return
		}
	}
}
