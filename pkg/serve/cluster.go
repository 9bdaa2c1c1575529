package serve

import (
	"context"

	"regctl/pkg/maintenance"
)

// startAgent runs the cluster maintenance agent, unless
// regctl.cluster.enabled is false, and returns what stops it.
//
// The first round registers this node (writes its heartbeat), then
// reads the lease, before the first request (and the first upload
// purge), so a job that holds the lease already never sees this node
// write. Call the returned stop only after the last request has drained,
// so a job keeps waiting for this node until then; it removes the
// heartbeat.
func (d *Daemon) startAgent(ctx context.Context, addr string) (stop func()) {
	if d.cfg.Cluster.Disabled {
		d.log.Warn("regctl.cluster.enabled is false: no heartbeat, no maintenance lease; garbage collection will not see this node, so make it read-only by hand first")
		return func() {}
	}
	agent := d.newAgent(addr)
	agent.Tick(ctx)
	agentCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(agentCtx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// newAgent is this daemon's maintenance agent, set as the server's
// write fence: every write checks, where it commits, that this node's
// heartbeat is fresh, and not only when the watchdog goroutine runs.
func (d *Daemon) newAgent(addr string) *maintenance.Agent {
	agent := &maintenance.Agent{
		Driver:   d.server.Driver(),
		Server:   d.server,
		Node:     maintenance.LocalNode(d.nodeID, addr, d.version()),
		Interval: d.HeartbeatInterval,
		Log:      d.log,
	}
	d.server.SetWriteFence(agent.WriteFence)
	return agent
}
