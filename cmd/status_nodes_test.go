package cmd

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// regctl status and registry-readonly status list the nodes whose
// heartbeats are in the storage, and show one not seen for 3 of its
// intervals as gone.
func TestStatusListsNodes(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"127.0.0.1:15998\"\n")
	drv, err := storage.NewFilesystem(filepath.Join(dir, "data", "gitlab-rails", "shared", "registry"))
	if err != nil {
		t.Fatal(err)
	}
	const iv = 2 * time.Second
	for _, n := range []maintenance.Node{
		{ID: "live-1", Addr: "10.0.0.1:5000", Host: "web1", PID: 11, IntervalMS: iv.Milliseconds(), LastSeen: time.Now()},
		{ID: "dead-2", Addr: "10.0.0.2:5000", Host: "web2", PID: 22, IntervalMS: iv.Milliseconds(), LastSeen: time.Now().Add(-maintenance.GoneAfter*iv - time.Second)},
	} {
		if err := maintenance.Heartbeat(t.Context(), drv, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"status"}, {"registry-readonly", "status"}} {
		r := regctl(t, append([]string{"--settings", settings}, args...)...)
		var live, dead string
		for line := range strings.SplitSeq(r.stdout, "\n") {
			switch {
			case strings.Contains(line, "live-1 on 10.0.0.1:5000"):
				live = line
			case strings.Contains(line, "dead-2 on 10.0.0.2:5000"):
				dead = line
			}
		}
		if live == "" || dead == "" || strings.Contains(live, "gone") || !strings.Contains(dead, "gone (last seen") {
			t.Errorf("%v does not list live-1 as live and dead-2 as gone:\n%s", args, r)
		}
	}
}
