package maintenance

import (
	"context"
	"time"

	"regctl/pkg/storage"
)

// ForgetAfter is how long the heartbeat of a node that stopped without
// removing it (killed, its machine gone) stays listed as gone before a
// daemon deletes it, so the listing does not grow for ever.
var ForgetAfter = 24 * time.Hour

// pruneEvery is how often an Agent looks for such heartbeats.
var pruneEvery = time.Hour

// PruneNodes deletes the heartbeats last seen more than olderThan ago
// (and unreadable ones as old by their file time) and returns their ids.
func PruneNodes(ctx context.Context, drv storage.Driver, olderThan time.Duration) ([]string, error) {
	clk := clockOf(ctx)
	nodes, err := Nodes(ctx, drv, 0)
	if err != nil {
		return nil, err
	}
	var pruned []string
	for _, n := range nodes {
		seen := n.LastSeen
		if n.Problem != "" {
			fi, err := drv.Stat(ctx, NodePath(n.ID))
			if err != nil {
				continue
			}
			seen = fi.ModTime
		}
		if clk.Since(seen) <= olderThan {
			continue
		}
		if err := RemoveNode(ctx, drv, n.ID); err != nil {
			return pruned, err
		}
		pruned = append(pruned, n.ID)
	}
	return pruned, nil
}

// prune starts PruneNodes at most every pruneEvery, in the background:
// a storage that hangs must not hold up the heartbeat. Only Run's
// goroutine calls it.
func (a *Agent) prune(ctx context.Context) {
	clk := clockOf(ctx)
	if clk.Since(a.pruned) < pruneEvery {
		return
	}
	a.pruned = clk.Now()
	go func() {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		ids, err := PruneNodes(pctx, a.Driver, ForgetAfter)
		if err != nil && ctx.Err() == nil {
			a.log().Debug("cannot prune old heartbeats", "err", err)
		}
		if len(ids) > 0 {
			a.log().Info("removed heartbeats of nodes gone for long", "nodes", ids, "gone_for_more_than", ForgetAfter)
		}
	}()
}
