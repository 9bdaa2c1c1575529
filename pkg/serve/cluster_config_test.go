package serve

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

func TestClusterHeartbeatSources(t *testing.T) {
	t.Setenv(maintenance.HeartbeatEnv, "")
	if d, err := clusterHeartbeat(distconfig.Cluster{}); err != nil || d != maintenance.DefaultHeartbeat {
		t.Errorf("nothing set: %v, %v", d, err)
	}
	if d, err := clusterHeartbeat(distconfig.Cluster{Heartbeat: 700 * time.Millisecond}); err != nil || d != 700*time.Millisecond {
		t.Errorf("config: %v, %v", d, err)
	}
	t.Setenv(maintenance.HeartbeatEnv, "300ms")
	if d, err := clusterHeartbeat(distconfig.Cluster{Heartbeat: 700 * time.Millisecond}); err != nil || d != 300*time.Millisecond {
		t.Errorf("environment over config: %v, %v", d, err)
	}
}

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

	cfg := distconfig.Default(root)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Storage.UploadPurging.Enabled = false
	cfg.Cluster.Disabled = true
	logs := &syncBuffer{}
	d, err := NewDaemon(cfg, "", slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(a string) { ready <- a }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	nodes, err := maintenance.Nodes(t.Context(), drv, time.Second)
	if err != nil || len(nodes) != 0 {
		t.Errorf("nodes = %v, %v; want none", nodes, err)
	}
	if d.Server().RefusesWrites() {
		t.Error("a node outside the cluster followed the lease")
	}
	cancel()
	<-done
}
