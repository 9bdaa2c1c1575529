package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/notify"
)

// TestNotificationsSurviveSIGKILL queues events for an endpoint that
// refuses them, kills the daemon with SIGKILL, and checks that the next
// run delivers every one of them once the endpoint answers.
func TestNotificationsSurviveSIGKILL(t *testing.T) {
	var accept atomic.Bool
	var mu sync.Mutex
	got := map[string]notify.Event{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var env notify.Envelope
		if err := json.Unmarshal(body, &env); err != nil || r.Header.Get("Content-Type") != notify.EventsMediaType {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, ev := range env.Events {
			got[ev.Target.Digest] = ev
		}
		mu.Unlock()
	}))
	defer hook.Close()

	addr := testtools.FreeAddr(t)
	cfgPath := serveConfig(t, addr, "notifications:\n  endpoints:\n    - name: gitlab\n      url: "+hook.URL+
		"\n      timeout: 2s\n      maxretries: 2\n      backoff: 100ms\n")
	queue := notify.QueueDir(filepath.Join(filepath.Dir(cfgPath), "notifications"), "gitlab")

	p := startServeT(t, cfgPath, addr)
	const n = 6
	var digests []string
	for i := range n {
		digests = append(digests, pushBlob(t, addr, "team/app", []byte(fmt.Sprintf("blob %d", i))))
	}
	waitFor(t, 20*time.Second, "the events on disk", func() bool {
		b, err := notify.Backlog(queue)
		return err == nil && b == n
	})
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait()

	accept.Store(true)
	startServeT(t, cfgPath, addr)
	waitFor(t, 30*time.Second, "delivery after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	mu.Lock()
	defer mu.Unlock()
	for _, d := range digests {
		ev, ok := got[d]
		if !ok || ev.Action != notify.ActionPush || ev.Target.Repository != "team/app" {
			t.Errorf("event for %s: %+v (found %v)", d, ev, ok)
		}
	}
	waitFor(t, 10*time.Second, "an empty queue", func() bool {
		b, err := notify.Backlog(queue)
		return err == nil && b == 0
	})
}
