package readonly

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/pkg/maintenance"
	"regctl/pkg/settings"
	"regctl/pkg/storage"
)

func load(t *testing.T, path string) *settings.Loaded {
	t.Helper()
	l, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Set edits the settings, renders them and, with no daemon running,
// says so; ReadStatus then finds config.yml in step.
func TestSetWithoutADaemon(t *testing.T) {
	dir := t.TempDir()
	settingsPath := filepath.Join(dir, "regctl.toml")
	if err := os.WriteFile(settingsPath, []byte("data_dir = \"data\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	res, err := Set(ctx, load(t, settingsPath), true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.ReadOnly || !res.SettingsChanged || res.Render == nil || res.Daemon == nil || res.Daemon.PID != 0 || res.Daemon.Error != "" {
		t.Fatalf("Set = %+v, daemon %+v", res, res.Daemon)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := ReadStatus(ctx, load(t, settingsPath), log)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || !st.InSync || st.Cluster.Error != "" || st.Cluster.Lease != nil || len(st.Cluster.Nodes) != 0 {
		t.Fatalf("status after enable = %+v", st)
	}
	res, err = Set(ctx, load(t, settingsPath), true)
	if err != nil || res.SettingsChanged {
		t.Fatalf("second enable = %+v, %v; want no change", res, err)
	}
	if res, err = Set(ctx, load(t, settingsPath), false); err != nil || !res.SettingsChanged {
		t.Fatalf("disable = %+v, %v", res, err)
	}
	if st, err := ReadStatus(ctx, load(t, settingsPath), log); err != nil || st.Enabled || !st.InSync {
		t.Fatalf("status after disable = %+v, %v", st, err)
	}
}

// With no daemon on the storage, enable --cluster takes the lease at
// once and reports nobody to wait for; the lease outlives the call until
// DisableCluster releases it.
func TestClusterWithoutDaemons(t *testing.T) {
	drv, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	en, err := EnableCluster(ctx, drv, 100*time.Millisecond, ClusterOptions{TTL: time.Hour, Reason: "disk swap", AckTimeout: time.Second})
	if err != nil || !en.Wait.NoDaemons() || en.Lease.Reason != "disk swap" || !en.Lease.IsManual() {
		t.Fatalf("EnableCluster = %+v, %v", en, err)
	}
	if cl := ReadCluster(ctx, drv, 100*time.Millisecond); cl.Error != "" || cl.Lease == nil || !strings.Contains(cl.Lease.Reason, "disk swap") {
		t.Fatalf("cluster after enable = %+v", cl)
	}
	if _, err := EnableCluster(ctx, drv, 100*time.Millisecond, ClusterOptions{TTL: time.Hour, AckTimeout: time.Second}); err == nil {
		t.Fatal("a second enable took a held lease")
	}
	released, after, err := DisableCluster(ctx, drv, 100*time.Millisecond, false)
	if err != nil || released == nil || after.Lease != nil {
		t.Fatalf("DisableCluster = %+v, %+v, %v", released, after, err)
	}
	if lease, err := maintenance.Current(context.Background(), drv); err != nil || lease != nil {
		t.Fatalf("lease after disable = %+v, %v", lease, err)
	}
}
