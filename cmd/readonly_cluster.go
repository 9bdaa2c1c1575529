package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/maintenance"
	"regctl/pkg/readonly"
)

// clusterReadonlyOpts are the --cluster flags of registry-readonly
// enable and disable: the maintenance lease, taken and released by hand.
type clusterReadonlyOpts struct {
	*rootOpts
	on         bool
	cluster    bool
	config     string
	ttl        time.Duration
	reason     string
	ackTimeout time.Duration
	force      bool
}

func (o *clusterReadonlyOpts) flags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config.yml naming the storage (default: the one rendered from the settings)")
	if o.on {
		f.BoolVar(&o.cluster, "cluster", false, "take the maintenance lease in the storage: every regctl daemon on it turns read-only within a heartbeat, no settings change, no restart")
		f.DurationVar(&o.ttl, "ttl", maintenance.DefaultManualTTL, "with --cluster: when the lease ends by itself if nobody runs disable --cluster (nothing renews it)")
		f.StringVar(&o.reason, "reason", "read-only by an admin", "with --cluster: why, shown in the 405 answers and in status")
		f.DurationVar(&o.ackTimeout, "ack-timeout", 2*time.Minute, "with --cluster: how long to wait for the daemons to switch")
	} else {
		f.BoolVar(&o.cluster, "cluster", false, "release the maintenance lease taken with enable --cluster")
		f.BoolVar(&o.force, "force", false, "with --cluster: release the lease even when a job (garbage collection, a cutover) holds it")
	}
}

// quietLog is the logger of commands that load a config only to read
// its storage: only errors show.
func (o *rootOpts) quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func (o *clusterReadonlyOpts) run(ctx context.Context) error {
	if o.on && o.ttl <= 0 {
		return usageError{fmt.Errorf("--ttl must be positive, not %s", o.ttl)}
	}
	drv, interval, err := readonly.OpenStorage(o.config, o.settingsPath(), o.quietLog())
	if err != nil {
		return err
	}
	p := o.printer()
	if !o.on {
		released, cl, err := readonly.DisableCluster(ctx, drv, interval, o.force)
		if err != nil {
			return err
		}
		if o.json() {
			return p.JSON(map[string]any{"released": released, "cluster": cl})
		}
		if released == nil {
			p.Line(ui.Info, "cluster", "no maintenance lease was held: nothing to release")
		} else {
			p.Line(ui.OK, "cluster", "released the maintenance lease ("+released.String()+"): the daemons accept writes again within one heartbeat ("+interval.String()+")")
		}
		printClusterState(p, cl)
		return nil
	}

	en, werr := readonly.EnableCluster(ctx, drv, interval, readonly.ClusterOptions{TTL: o.ttl, Reason: o.reason, AckTimeout: o.ackTimeout})
	if en == nil {
		return werr
	}
	info, res := en.Lease, en.Wait
	if o.json() {
		out := map[string]any{"lease": info, "nodes": res.Nodes, "acked": res.Acked, "live": res.Live, "gone": res.Gone,
			"pending": res.Pending, "waited_ms": res.Waited.Milliseconds()}
		if werr != nil {
			out["error"] = werr.Error()
		}
		if err := p.JSON(out); err != nil {
			return err
		}
		return werr
	}
	p.Line(ui.OK, "cluster", fmt.Sprintf("took the maintenance lease: %s", info.Reason))
	p.Field("expires", fmt.Sprintf("%s (in %s; nothing renews it: run `regctl registry-readonly disable --cluster` to end it sooner)",
		info.Expires.Local().Format(time.RFC3339), o.ttl))
	switch {
	case werr != nil:
		p.Line(ui.Warn, "read-only", fmt.Sprintf("%d of %d live daemon(s) acknowledged after %s; the lease stays", res.Acked, res.Live, res.Waited.Round(time.Millisecond)))
	case res.NoDaemons():
		p.Line(ui.Warn, "read-only", "no regctl daemon runs on this storage: other writers (CNCF Distribution, GitLab's registry) must be made read-only by hand")
	default:
		p.Line(ui.OK, "read-only", fmt.Sprintf("%d daemon(s) refuse writes, with none in flight (waited %s)", res.Acked, res.Waited.Round(time.Millisecond)))
	}
	for _, n := range res.Nodes {
		printNode(p, "node", n)
	}
	return werr
}

func printClusterState(p *ui.Printer, cl readonly.ClusterState) {
	if cl.Error != "" {
		p.Line(ui.Warn, "cluster", "cannot read the storage's lease and heartbeats: "+cl.Error)
		return
	}
	if cl.Lease != nil {
		kind := "a job's"
		if cl.Lease.IsManual() {
			kind = "taken by hand (disable --cluster ends it)"
		}
		p.Line(ui.Warn, "maintenance", fmt.Sprintf("lease held, %s: %s", kind, cl.Lease))
	} else {
		p.Field("maintenance", "no lease: the daemons take writes unless read-only by configuration")
	}
	if len(cl.Nodes) == 0 {
		p.Field("nodes", "none on the storage")
	}
	for _, n := range cl.Nodes {
		printNode(p, "node", n)
	}
}
