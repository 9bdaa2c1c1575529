package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"regctl/pkg/storage"
)

// DuringOptions tune During.
type DuringOptions struct {
	// Holder and Reason go into the lease, for `status` and the 405s.
	Holder, Reason string
	// TTL is how long the lease lives without renewal (DefaultLeaseTTL).
	TTL time.Duration
	// Interval is how often node heartbeats are polled and how gone
	// nodes are judged: HeartbeatEnv, else DefaultHeartbeat.
	Interval time.Duration
	// AckTimeout bounds the wait for daemons to switch to read-only.
	AckTimeout time.Duration
	Log        *slog.Logger
	// OnReadOnly is told who acknowledged, before fn runs.
	OnReadOnly func(WaitResult)
}

// ErrNotAcknowledged is returned when a live daemon did not switch to
// read-only in time: the job does not run.
var ErrNotAcknowledged = errors.New("not every regctl daemon switched to read-only in time")

// During runs fn while every regctl daemon on drv is read-only: it takes
// the maintenance lease, waits until every live node has acknowledged
// it, runs fn, and releases the lease afterwards — also when fn fails,
// ctx is cancelled or fn panics. fn's context ends if the lease is lost
// (taken over after expiring), so the job stops rather than run
// unprotected.
func During(ctx context.Context, drv storage.Driver, opts DuringOptions, fn func(context.Context) error) (res WaitResult, err error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultLeaseTTL
	}
	if opts.Interval <= 0 {
		iv, err := HeartbeatFromEnv()
		if err != nil {
			return res, err
		}
		opts.Interval = iv
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 2 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	lease, err := Acquire(ctx, drv, opts.Holder, opts.Reason, opts.TTL)
	if err != nil {
		return res, err
	}
	defer func() {
		// A fresh context: Ctrl-C must not keep the cluster read-only.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if rerr := lease.Release(rctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("releasing the maintenance lease (it expires by itself at %s): %w",
				lease.Info().Expires.Local().Format(time.RFC3339), rerr))
			return
		}
		waitReleased(rctx, drv, lease.Info().Ack(), opts.Interval)
	}()

	wctx, cancel := context.WithTimeout(ctx, opts.AckTimeout)
	res, err = WaitForReadOnly(wctx, drv, lease, opts.Interval, opts.Log)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return res, fmt.Errorf("%w (waited %s for %d of %d live nodes: %s)", ErrNotAcknowledged, opts.AckTimeout, len(res.Pending), res.Live, strings.Join(res.Pending, ", "))
		}
		return res, err
	}
	if opts.OnReadOnly != nil {
		opts.OnReadOnly(res)
	}

	jctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		select {
		case <-lease.Lost():
			stop(fmt.Errorf("maintenance lease lost: %w", lease.Err()))
		case <-jctx.Done():
		}
	}()
	err = fn(jctx)
	if cause := context.Cause(jctx); err != nil && cause != nil && !errors.Is(cause, ctx.Err()) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	return res, err
}

// waitReleased gives the daemons a few heartbeats to take writes again,
// so that the registry is writable when the command returns, as it is
// after gitlab-ctl restarts it. It is best effort: a node that is slow
// to notice catches up on its next poll anyway.
func waitReleased(ctx context.Context, drv storage.Driver, ack string, interval time.Duration) {
	deadline := time.Now().Add(3 * interval)
	for time.Now().Before(deadline) {
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
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval / 4):
		}
	}
}
