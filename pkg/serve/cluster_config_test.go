package serve

import (
	"context"
	"strings"
	"testing"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// With regctl.cluster.enabled false the daemon writes no heartbeat and
// ignores the lease.
func TestClusterDisabled(t *testing.T) {
	root := t.TempDir()
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := maintenance.Acquire(t.Context(), drv, "test", "garbage collection", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())

	d := startDaemonWith(t, root, time.Second, func(c *distconfig.Config) { c.Cluster.Disabled = true })
	nodes, err := maintenance.Nodes(t.Context(), drv, time.Second)
	if err != nil || len(nodes) != 0 {
		t.Errorf("nodes = %v, %v; want none", nodes, err)
	}
	if d.Server().RefusesWrites() {
		t.Error("a node outside the cluster followed the lease")
	}
	if !strings.Contains(d.logs.String(), "regctl.cluster.enabled is false") {
		t.Errorf("no warning logged:\n%s", d.logs.String())
	}
}
