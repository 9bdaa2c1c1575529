package service

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/debugserver"
	"regctl/pkg/notify"
)

// TestStatusShowsTheBacklog: with the daemon stopped, status reads each
// endpoint's queue from disk.
func TestStatusShowsTheBacklog(t *testing.T) {
	s := testService(t)
	root := filepath.Join(filepath.Dir(s.Config), "root")
	y := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + root + "\nhttp:\n  addr: " + freeAddr(t) + "\n" +
		"notifications:\n  endpoints:\n    - name: gitlab\n      url: https://u:pw@gitlab.example.com/api/events?token=x\n" +
		"    - name: idle\n      url: http://idle.example.com/\n      disabled: true\n"
	if err := os.WriteFile(s.Config, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(s.Config), "notifications")
	q, err := notify.OpenQueue(notify.QueueDir(dir, "gitlab"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Append([][]byte{[]byte(`{"id":"1"}`), []byte(`{"id":"2"}`), []byte(`{"id":"3"}`)}); err != nil {
		t.Fatal(err)
	}
	q.Next()
	q.Ack()
	q.Close()

	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Notifications) != 2 {
		t.Fatalf("notifications = %+v", st.Notifications)
	}
	g, idle := st.Notifications[0], st.Notifications[1]
	if g.Name != "gitlab" || g.Pending != 2 || g.Error != "" || g.Live != nil || strings.Contains(g.URL, "pw") || strings.Contains(g.URL, "token") {
		t.Errorf("gitlab = %+v", g)
	}
	if idle.Name != "idle" || !idle.Disabled || idle.Pending != 0 {
		t.Errorf("idle = %+v", idle)
	}
}

func TestLiveNotificationsFromDebugVars(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/vars" {
			http.NotFound(w, r)
			return
		}
		var v debugserver.RegistryVars
		v.Notifications.Endpoints = []notify.Stats{{Name: "gitlab", Pending: 2, Successes: 7, Dropped: 1}}
		json.NewEncoder(w).Encode(map[string]any{"registry": v, "memstats": map[string]int{}})
	}))
	defer srv.Close()
	live := liveNotifications(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if st := live["gitlab"]; st.Successes != 7 || st.Dropped != 1 || st.Pending != 2 {
		t.Errorf("live = %+v", live)
	}
	if liveNotifications(context.Background(), freeAddr(t)) != nil {
		t.Error("a closed debug port gave counters")
	}
}
