package maintenance

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"regctl/pkg/storage"
)

// WaitResult is what WaitForReadOnly found.
type WaitResult struct {
	// Nodes is the last listing of heartbeats.
	Nodes []NodeStatus
	// Live counts the nodes not gone, Acked those of them that switched
	// to read-only for the lease, Gone the others (not waited for).
	Live, Acked, Gone int
	// Pending names the live nodes that had not switched yet when the
	// wait ended.
	Pending []string
	// Waited is how long it took.
	Waited time.Duration
}

// NoDaemons reports that no regctl daemon is running on this storage:
// nothing enforced read-only, so other writers (CNCF Distribution,
// GitLab's registry) must be made read-only by hand.
func (r WaitResult) NoDaemons() bool { return r.Live == 0 }

// WaitForReadOnly waits until every live node acknowledges lease in its
// heartbeat, that is, refuses writes and has none left in flight. Nodes
// gone for GoneAfter intervals are not waited for, including those that
// stop heartbeating during the wait; it returns at once when no node is
// live. interval is the daemons' heartbeat interval. It gives up with an
// error naming the pending nodes when ctx ends, or when the lease is
// lost.
func WaitForReadOnly(ctx context.Context, drv storage.Driver, lease *Lease, interval time.Duration, log *slog.Logger) (WaitResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := clockOf(ctx)
	start := clk.Now()
	poll := min(max(interval/4, 10*time.Millisecond), 500*time.Millisecond)
	var res WaitResult
	var logged []string
	var lastErr error
	for {
		info := lease.Info()
		nodes, err := Nodes(ctx, drv, interval)
		if err == nil {
			res = tally(nodes, info)
			res.Waited = clk.Since(start)
			if len(res.Pending) == 0 {
				if res.Live > 0 {
					log.Info("every regctl daemon on this storage is read-only", "nodes", res.Live, "gone", res.Gone, "waited", res.Waited.Round(time.Millisecond))
				}
				return res, nil
			}
			if !slices.Equal(res.Pending, logged) {
				log.Info("waiting for regctl daemons to switch to read-only", "pending", strings.Join(res.Pending, ", "), "acked", res.Acked, "live", res.Live)
				logged = res.Pending
			}
		} else if lastErr == nil || err.Error() != lastErr.Error() {
			log.Warn("cannot list the regctl daemons on this storage; retrying", "err", err)
		}
		lastErr = err

		select {
		case <-ctx.Done():
			res.Waited = clk.Since(start)
			if len(res.Pending) == 0 && lastErr != nil {
				return res, fmt.Errorf("waiting for the regctl daemons to switch to read-only: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return res, fmt.Errorf("waiting for regctl daemons to switch to read-only: %d of %d not switched after %s (%s): %w",
				len(res.Pending), res.Live, res.Waited.Round(time.Millisecond), strings.Join(res.Pending, ", "), ctx.Err())
		case <-lease.Lost():
			res.Waited = clk.Since(start)
			return res, lease.Err()
		case <-clk.After(poll):
		}
	}
}

func tally(nodes []NodeStatus, l LeaseInfo) WaitResult {
	r := WaitResult{Nodes: nodes}
	for _, n := range nodes {
		switch {
		case n.Gone:
			r.Gone++
		case n.Acks(l):
			r.Live++
			r.Acked++
		default:
			r.Live++
			r.Pending = append(r.Pending, n.String())
		}
	}
	return r
}
