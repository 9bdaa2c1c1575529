package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// testDaemon is a Daemon running in-process on a loopback port.
type testDaemon struct {
	*Daemon
	addr string
	logs *testtools.SyncBuffer
	stop func() error // cancels Run and returns its error
}

func startDaemon(t *testing.T, root string, interval time.Duration) *testDaemon {
	t.Helper()
	return startDaemonWith(t, root, interval, nil)
}

// startDaemonWith is startDaemon with a chance to edit the config.
func startDaemonWith(t *testing.T, root string, interval time.Duration, edit func(*distconfig.Config)) *testDaemon {
	t.Helper()
	cfg := distconfig.Default(root)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.DrainTimeout = 5 * time.Second
	cfg.Storage.UploadPurging.Enabled = false
	if edit != nil {
		edit(cfg)
	}
	logs := &testtools.SyncBuffer{}
	d, err := NewDaemon(cfg, "", slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.HeartbeatInterval = interval
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon stopped: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("daemon did not start")
	}
	td := &testDaemon{Daemon: d, addr: addr, logs: logs}
	var once sync.Once
	var runErr error
	td.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { td.stop() })
	return td
}

// request sends one request with a fresh connection and returns the
// status and the first OCI error message, if any.
func (td *testDaemon) request(t *testing.T, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+td.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var env struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
		return resp.StatusCode, env.Errors[0].Message
	}
	return resp.StatusCode, ""
}

func ownHeartbeat(t *testing.T, drv storage.Driver, id string) *maintenance.NodeStatus {
	t.Helper()
	nodes, err := maintenance.Nodes(t.Context(), drv, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return &n
		}
	}
	return nil
}

// A maintenance job on another process (here: the test, with its own
// driver on the same root) takes the lease: the daemon stops taking
// writes within a few heartbeats and acknowledges, pulls go on, and
// writes come back after the release. Its heartbeat goes on shutdown.
func TestDaemonClusterMaintenance(t *testing.T) {
	root := t.TempDir()
	const iv = 500 * time.Millisecond // shorter beats flake on a loaded 2-core machine
	td := startDaemon(t, root, iv)
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	hb := ownHeartbeat(t, drv, td.NodeID())
	if hb == nil || hb.ReadOnly || hb.Addr != td.addr || hb.PID == 0 {
		t.Fatalf("heartbeat at start: %+v", hb)
	}
	if code, msg := td.request(t, http.MethodPost, "/v2/app/blobs/uploads/", nil); code != http.StatusAccepted {
		t.Fatalf("POST before maintenance: %d %s", code, msg)
	}

	lease, err := maintenance.Acquire(ctx, drv, "test-host/1/regctl registry-garbage-collect", "garbage collection", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 20*iv)
	res, err := maintenance.WaitForReadOnly(wctx, drv, lease, iv, nil)
	cancel()
	if err != nil || res.Live != 1 || res.Acked != 1 {
		t.Fatalf("WaitForReadOnly = %+v, %v", res, err)
	}
	t.Logf("read-only and acknowledged %v after the lease (heartbeat %v)", time.Since(start).Round(time.Millisecond), iv)

	code, msg := td.request(t, http.MethodPost, "/v2/app/blobs/uploads/", nil)
	if code != http.StatusMethodNotAllowed || !strings.Contains(msg, "read-only maintenance: garbage collection by test-host/1/regctl registry-garbage-collect") {
		t.Fatalf("POST in maintenance: %d %q", code, msg)
	}
	if code, _ := td.request(t, http.MethodGet, "/v2/", nil); code != http.StatusOK {
		t.Errorf("GET /v2/ in maintenance: %d", code)
	}
	if code, _ := td.request(t, http.MethodGet, "/v2/_catalog", nil); code != http.StatusOK {
		t.Errorf("GET catalog in maintenance: %d", code)
	}
	hb = ownHeartbeat(t, drv, td.NodeID())
	if hb == nil || !hb.ReadOnly || !hb.Acks(lease.Info()) ||
		hb.ReadOnlyReason != "maintenance: garbage collection by test-host/1/regctl registry-garbage-collect" {
		t.Fatalf("heartbeat in maintenance: %+v", hb)
	}
	if td.Server().ReadOnly() {
		t.Error("maintenance changed the configured read-only mode")
	}

	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * iv)
	for {
		code, msg := td.request(t, http.MethodPost, "/v2/app/blobs/uploads/", nil)
		if code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST after the release: %d %s", code, msg)
		}
		time.Sleep(iv / 2)
	}
	if hb = ownHeartbeat(t, drv, td.NodeID()); hb == nil || hb.ReadOnly || hb.MaintenanceAck != "" {
		t.Errorf("heartbeat after the release: %+v", hb)
	}
	for _, want := range []string{"maintenance: refusing writes", "acknowledged", "maintenance ended: accepting writes again"} {
		if !strings.Contains(td.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, td.logs)
		}
	}

	if err := td.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Stat(ctx, maintenance.NodePath(td.NodeID())); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("heartbeat after shutdown: %v", err)
	}
}

// The acknowledgement waits for writes admitted before the switch: a
// PATCH whose body is still arriving holds it back, and still succeeds.
func TestDaemonAckWaitsForWritesInFlight(t *testing.T) {
	root := t.TempDir()
	const iv = 500 * time.Millisecond // shorter beats flake on a loaded 2-core machine
	td := startDaemon(t, root, iv)
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	req, _ := http.NewRequest(http.MethodPost, "http://"+td.addr+"/v2/app/blobs/uploads/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + td.addr + loc
	}
	pr, pw := io.Pipe()
	patched := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, loc, pr)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			patched <- 0
			return
		}
		resp.Body.Close()
		patched <- resp.StatusCode
	}()
	pw.Write([]byte("a chunk "))
	deadline := time.Now().Add(5 * time.Second)
	for td.Server().WritesInFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the PATCH was never admitted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	lease, err := maintenance.Acquire(ctx, drv, "h/1/gc", "garbage collection", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 10*iv)
	res, err := maintenance.WaitForReadOnly(wctx, drv, lease, iv, nil)
	cancel()
	if err == nil || len(res.Pending) != 1 {
		t.Fatalf("acknowledged with a write in flight: %+v, %v", res, err)
	}
	if _, on := td.Server().Maintenance(); !on {
		t.Fatal("not in maintenance while the write finishes")
	}

	pw.Write([]byte("and the rest"))
	pw.Close()
	if code := <-patched; code != http.StatusAccepted {
		t.Fatalf("PATCH admitted before maintenance: %d, want 202", code)
	}
	wctx, cancel = context.WithTimeout(ctx, 20*iv)
	res, err = maintenance.WaitForReadOnly(wctx, drv, lease, iv, nil)
	cancel()
	if err != nil || res.Acked != 1 {
		t.Fatalf("WaitForReadOnly once the write ended = %+v, %v", res, err)
	}
}

// A daemon that starts while a job holds the lease refuses writes from
// its first request, not one heartbeat later.
func TestDaemonStartsInMaintenance(t *testing.T) {
	root := t.TempDir()
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := maintenance.Acquire(t.Context(), drv, "h/1/gc", "garbage collection", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	td := startDaemon(t, root, time.Hour) // no tick but the first
	if code, msg := td.request(t, http.MethodPost, "/v2/app/blobs/uploads/", nil); code != http.StatusMethodNotAllowed || !strings.Contains(msg, "garbage collection by h/1/gc") {
		t.Fatalf("first POST: %d %q", code, msg)
	}
	if hb := ownHeartbeat(t, drv, td.NodeID()); hb == nil || !hb.Acks(lease.Info()) {
		t.Fatalf("heartbeat: %+v, want the ack", hb)
	}
}

func TestNewDaemonHeartbeatEnv(t *testing.T) {
	cfg := distconfig.Default(t.TempDir())
	t.Setenv(maintenance.HeartbeatEnv, "300ms")
	d, err := NewDaemon(cfg, "", slog.New(slog.DiscardHandler), nil)
	if err != nil || d.HeartbeatInterval != 300*time.Millisecond || d.NodeID() == "" {
		t.Fatalf("NewDaemon = %+v, %v", d, err)
	}
	t.Setenv(maintenance.HeartbeatEnv, "often")
	if _, err := NewDaemon(cfg, "", slog.New(slog.DiscardHandler), nil); err == nil || !strings.Contains(err.Error(), maintenance.HeartbeatEnv) {
		t.Fatalf("NewDaemon with a bad %s: %v", maintenance.HeartbeatEnv, err)
	}
}
