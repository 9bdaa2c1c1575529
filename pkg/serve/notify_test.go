package serve

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/distconfig"
	"regctl/pkg/notify"
)

// TestNotificationQueuesAreOneDaemonsAndReleased: a second daemon on the
// same config cannot take the queues, and a daemon whose Run failed
// early releases them.
func TestNotificationQueuesAreOneDaemonsAndReleased(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	path := filepath.Join(dir, "config.yml")
	y := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + filepath.Join(dir, "root") + "\nhttp:\n  addr: " + taken.Addr().String() +
		"\nnotifications:\n  endpoints:\n    - name: gitlab\n      url: http://127.0.0.1:1/\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := distconfig.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := notify.QueueRoot(cfg, path), filepath.Join(dir, "notifications"); got != want {
		t.Errorf("queue folder = %s, want %s", got, want)
	}
	log := slog.New(slog.DiscardHandler)
	d1, err := NewDaemon(cfg, path, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDaemon(cfg, path, log, nil); err == nil || !strings.Contains(err.Error(), "notifications.queue.directory") {
		t.Fatalf("second daemon on the same queues: %v", err)
	}
	// The address is taken: Run fails before serving, and lets go.
	if err := d1.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "http.addr") {
		t.Fatalf("Run = %v, want the http.addr error", err)
	}
	if _, err := NewDaemon(cfg, path, log, nil); err != nil {
		t.Fatalf("the queues were not released: %v", err)
	}
}
