package cmd

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/serve"
	"regctl/pkg/storage"
)

// startNode runs a regctl serve daemon in-process on the rendered config.
func startNode(t *testing.T, configYML string, heartbeat time.Duration) *serve.Daemon {
	t.Helper()
	cfg, err := distconfig.Load(configYML, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Auth = nil
	cfg.Storage.UploadPurging.Enabled = false
	d, err := serve.NewDaemon(cfg, "", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.HeartbeatInterval = heartbeat
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(a string) { ready <- a }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

func TestRegistryReadonlyCluster(t *testing.T) {
	t.Setenv(maintenance.HeartbeatEnv, "300ms")
	dir, settings := prepared(t, "data_dir = \"data\"\n")
	configYML := filepath.Join(dir, "data", "registry", "config.yml")
	a := startNode(t, configYML, 300*time.Millisecond)
	b := startNode(t, configYML, 300*time.Millisecond)

	r := mustCode(t, 0, "--settings", settings, "registry-readonly", "enable", "--cluster", "--ttl", "1h", "--reason", "disk swap")
	for _, want := range []string{"took the maintenance lease: disk swap", "nothing renews it", "2 daemon(s) refuse writes", a.NodeID(), b.NodeID()} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("enable output lacks %q:\n%s", want, r)
		}
	}
	if !a.Server().RefusesWrites() || !b.Server().RefusesWrites() {
		t.Fatal("a node accepts writes after enable --cluster returned")
	}
	if reason, _ := a.Server().Maintenance(); !strings.Contains(reason, "disk swap") {
		t.Errorf("maintenance reason = %q", reason)
	}

	// The lease outlives the command: it is not renewed, not released.
	drv, err := storage.NewFilesystem(filepath.Join(dir, "data", "gitlab-rails", "shared", "registry"))
	if err != nil {
		t.Fatal(err)
	}
	lease, err := maintenance.Current(t.Context(), drv)
	if err != nil || lease == nil || !lease.IsManual() || time.Until(lease.Expires) < 59*time.Minute {
		t.Fatalf("lease after enable: %+v, %v", lease, err)
	}

	r = mustCode(t, 0, "--settings", settings, "registry-readonly", "status", "-o", "json")
	var st struct {
		Enabled bool `json:"enabled"`
		Cluster struct {
			Lease *maintenance.LeaseInfo
			Nodes []maintenance.NodeStatus
		} `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if st.Enabled || st.Cluster.Lease == nil || len(st.Cluster.Nodes) != 2 {
		t.Fatalf("status: %s", r.stdout)
	}
	for _, n := range st.Cluster.Nodes {
		if !n.ReadOnly || n.Gone || !strings.Contains(n.ReadOnlyReason, "disk swap") {
			t.Errorf("node %+v", n)
		}
	}
	r = mustCode(t, 0, "--settings", settings, "registry-readonly", "status")
	if !strings.Contains(r.stdout, "taken by hand") {
		t.Errorf("status does not say the lease was taken by hand:\n%s", r)
	}

	// A second enable finds the lease held.
	r = mustCode(t, 1, "--settings", settings, "registry-readonly", "enable", "--cluster")
	if !strings.Contains(r.stderr, "maintenance lease is held") {
		t.Errorf("second enable: %s", r)
	}

	r = mustCode(t, 0, "--settings", settings, "registry-readonly", "disable", "--cluster")
	if !strings.Contains(r.stdout, "released the maintenance lease") {
		t.Errorf("disable output:\n%s", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Server().RefusesWrites() || b.Server().RefusesWrites() {
		if time.Now().After(deadline) {
			t.Fatal("nodes still refuse writes 5 s after disable --cluster")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A job's lease is not released by hand without --force.
	job, err := maintenance.Acquire(t.Context(), drv, maintenance.Holder("registry-garbage-collect"), "garbage collection", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Release(context.Background())
	r = mustCode(t, 1, "--settings", settings, "registry-readonly", "disable", "--cluster")
	if !strings.Contains(r.stderr, "belongs to a running job") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("disable of a job's lease: %s", r)
	}
	mustCode(t, 2, "--settings", settings, "registry-readonly", "enable", "--cluster", "--ttl", "0s")
}
