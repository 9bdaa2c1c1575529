package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
)

// receiver is a webhook endpoint that records what it accepts. fail
// decides the answer to each request before it is recorded.
type receiver struct {
	mu       sync.Mutex
	events   []Event
	requests []*http.Request
	times    []time.Time
	calls    atomic.Int64
	fail     func(call int64) int // status to answer; 0 accepts
	srv      *httptest.Server
}

func newReceiver(t *testing.T, fail func(int64) int) *receiver {
	rc := &receiver{fail: fail}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := rc.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.times = append(rc.times, time.Now())
		rc.mu.Unlock()
		if rc.fail != nil {
			if st := rc.fail(call); st != 0 {
				w.WriteHeader(st)
				return
			}
		}
		var env Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			t.Errorf("body is not an envelope: %v: %s", err, body)
		}
		rc.mu.Lock()
		rc.events = append(rc.events, env.Events...)
		rc.requests = append(rc.requests, r)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Event(nil), rc.events...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func endpointCfg(name, url string) distconfig.Endpoint {
	return distconfig.Endpoint{Name: name, URL: url, Timeout: 2 * time.Second, MaxRetries: 3, Backoff: 20 * time.Millisecond}
}

func startManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(Source{Addr: "node:5000", InstanceID: "test"})
	t.Cleanup(m.Stop)
	return m
}

func pushEvent(repo string, i int) Event {
	return Event{Action: ActionPush, Target: Target{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Repository: repo,
		Digest: fmt.Sprintf("sha256:%064d", i), Tag: fmt.Sprint("t", i),
	}}
}

func TestDeliversInOrderWithHeadersAndFilters(t *testing.T) {
	rc := newReceiver(t, nil)
	ep := endpointCfg("gitlab", rc.srv.URL+"/notify")
	ep.Headers = map[string][]string{"Authorization": {"Bearer s3cret"}}
	ep.Ignore.Actions = []string{"pull"}
	ep.IgnoredMediaTypes = []string{"application/octet-stream"}
	m := startManager(t, Config{Endpoints: []distconfig.Endpoint{ep}, Dir: t.TempDir()})
	for i := range 5 {
		m.Notify(pushEvent("group/app", i))
	}
	m.Notify(Event{Action: ActionPull, Target: Target{Repository: "group/app"}})
	m.Notify(Event{Action: ActionPush, Target: Target{MediaType: "application/octet-stream", Repository: "group/app"}})
	// A marker after the ignored events: deliveries keep their order,
	// so an ignored event that went out would arrive before it.
	m.Notify(pushEvent("group/app", 5))
	waitFor(t, "the marker", func() bool {
		got := rc.got()
		return len(got) > 0 && got[len(got)-1].Target.Tag == "t5"
	})
	got := rc.got()
	if len(got) != 6 {
		t.Fatalf("delivered %d events, want the 5 pushes and the marker (pull and blob ignored)", len(got))
	}
	for i, ev := range got {
		if ev.Target.Tag != fmt.Sprint("t", i) || ev.ID == "" || ev.Timestamp.IsZero() || ev.Source.InstanceID != "test" {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
	r := rc.requests[0]
	if ct := r.Header.Get("Content-Type"); ct != EventsMediaType {
		t.Errorf("Content-Type = %q", ct)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer s3cret" {
		t.Errorf("Authorization = %q", a)
	}
	// The stats count a delivery, and the queue lets it go, once its
	// answer is read: a moment after the receiver has the events.
	waitFor(t, "the deliveries counted", func() bool { st := m.Stats()[0]; return st.Successes >= 6 && st.Pending == 0 })
	st := m.Stats()[0]
	if st.Events != 6 || st.Successes != 6 || st.Pending != 0 || st.Dropped != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFlakyEndpointIsRetriedWithBackoff(t *testing.T) {
	// The first 6 attempts fail with 503, then everything is accepted.
	rc := newReceiver(t, func(call int64) int {
		if call <= 6 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	ep := endpointCfg("flaky", rc.srv.URL)
	ep.Backoff = time.Second
	ep.MaxRetries = 3
	m := startManager(t, Config{Endpoints: []distconfig.Endpoint{ep}, Dir: t.TempDir()})
	m.Notify(pushEvent("r", 1))
	waitFor(t, "the first attempt", func() bool { return rc.calls.Load() >= 1 })
	m.Notify(pushEvent("r", 2))
	waitFor(t, "delivery after failures", func() bool { return len(rc.got()) == 2 })
	st := m.Stats()[0]
	if st.Failures != 6 || st.Successes != 2 || st.Statuses["503 Service Unavailable"] != 6 {
		t.Errorf("stats = %+v", st)
	}
	if got := rc.got(); got[0].Target.Tag != "t1" || got[1].Target.Tag != "t2" {
		t.Errorf("order: %v, %v", got[0].Target.Tag, got[1].Target.Tag)
	}
	// Distribution's rhythm: attempts 1-3 go at once; once 3 in a row
	// have failed, every attempt waits the backoff (1s) after the last
	// failure, and the wait does not grow (doubling would make the
	// gaps 2s, 4s, 8s).
	rc.mu.Lock()
	times := append([]time.Time(nil), rc.times...)
	rc.mu.Unlock()
	// (The two events may go in one envelope or two.)
	if len(times) < 7 {
		t.Fatalf("%d attempts, want 7 or 8", len(times))
	}
	for i := 1; i < 7; i++ {
		gap := times[i].Sub(times[i-1])
		if i < 3 {
			if gap >= 500*time.Millisecond {
				t.Errorf("gap before attempt %d = %v, want an immediate retry (< 500ms)", i+1, gap)
			}
			continue
		}
		if gap < ep.Backoff || gap > ep.Backoff+1500*time.Millisecond {
			t.Errorf("gap before attempt %d = %v, want backoff: between 1s and 2.5s", i+1, gap)
		}
	}
}

func TestRetryWaitFollowsDistributionsBreaker(t *testing.T) {
	for _, c := range []struct {
		failures, threshold int
		want                time.Duration
	}{
		{1, 5, 0}, {4, 5, 0}, {5, 5, time.Second}, {6, 5, time.Second}, {500, 5, time.Second},
		{1, 0, time.Second}, {1, 1, time.Second},
	} {
		if got := retryWait(c.failures, c.threshold, time.Second); got != c.want {
			t.Errorf("retryWait(%d, %d, 1s) = %v, want %v", c.failures, c.threshold, got, c.want)
		}
	}
	if got := retryWait(9, 5, 0); got != 10*time.Millisecond {
		t.Errorf("a zero backoff waits %v, want a 10ms floor", got)
	}
}

func TestPendingEventsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	// First run: the endpoint is down (nothing listens), events queue.
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	m1, err := New(Config{Endpoints: []distconfig.Endpoint{endpointCfg("ep", url)}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m1.Start(Source{})
	for i := range 7 {
		m1.Notify(pushEvent("r", i))
	}
	waitFor(t, "a failed attempt", func() bool { return m1.Stats()[0].Errors > 0 })
	m1.Stop()
	if n, err := Backlog(QueueDir(dir, "ep")); err != nil || n != 7 {
		t.Fatalf("backlog after stop = %d, %v; want 7", n, err)
	}

	// Second run: the endpoint answers.
	rc := newReceiver(t, nil)
	m2 := startManager(t, Config{Endpoints: []distconfig.Endpoint{endpointCfg("ep", rc.srv.URL)}, Dir: dir})
	if p := m2.Stats()[0].Pending; p != 7 {
		t.Errorf("pending at start = %d, want 7", p)
	}
	waitFor(t, "the queued events", func() bool { return len(rc.got()) == 7 })
	for i, ev := range rc.got() {
		if ev.Target.Tag != fmt.Sprint("t", i) {
			t.Errorf("event %d has tag %s", i, ev.Target.Tag)
		}
	}
	waitFor(t, "empty backlog", func() bool { n, _ := Backlog(QueueDir(dir, "ep")); return n == 0 })
}

func TestFullQueueDropsAreCounted(t *testing.T) {
	block := make(chan struct{})
	rc := newReceiver(t, func(int64) int { <-block; return http.StatusServiceUnavailable })
	defer close(block)
	ep := endpointCfg("slow", rc.srv.URL)
	ep.Timeout = time.Minute
	m := startManager(t, Config{Endpoints: []distconfig.Endpoint{ep}, Dir: t.TempDir(), MaxEvents: 3})
	for i := range 10 {
		m.Notify(pushEvent("r", i))
	}
	waitFor(t, "the drops", func() bool { return m.Stats()[0].Dropped == 7 })
	st := m.Stats()[0]
	if st.Pending != 3 || st.Events != 3 {
		t.Errorf("stats = %+v, want 3 pending and 3 accepted", st)
	}
}

func TestQueueCursorAndLimit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q, err := OpenQueue(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := q.Append([][]byte{[]byte(`{"a":1}`), []byte(`{"a":2}`)}); n != 2 || err != nil {
		t.Fatalf("append = %d, %v", n, err)
	}
	if n, _ := q.Append([][]byte{[]byte(`{"a":3}`), []byte(`{"a":4}`), []byte(`{"a":5}`)}); n != 2 {
		t.Fatalf("append over the limit took %d, want 2", n)
	}
	ev, ok, err := q.Next()
	if !ok || err != nil || string(ev) != `{"a":1}` {
		t.Fatalf("next = %s %v %v", ev, ok, err)
	}
	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	// A second daemon on the same folder is refused while this one runs.
	if _, err := OpenQueue(dir, 4); err == nil || !strings.Contains(err.Error(), "in use by another regctl serve") {
		t.Errorf("second open: %v", err)
	}
	q.Close()
	// A leftover temp file (a crash mid-write) goes at open.
	os.WriteFile(filepath.Join(dir, ".00000000000000000001.jsonl.tmp-123"), []byte("junk"), 0o600)
	q2, err := OpenQueue(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	if p := q2.Pending(); p != 3 {
		t.Errorf("pending after reopen = %d, want 3", p)
	}
	if n, _ := Backlog(dir); n != 3 {
		t.Errorf("backlog = %d, want 3", n)
	}
	for _, want := range []string{`{"a":2}`, `{"a":3}`, `{"a":4}`} {
		ev, ok, err := q2.Next()
		if !ok || err != nil || string(ev) != want {
			t.Fatalf("next = %s %v %v, want %s", ev, ok, err, want)
		}
		q2.Ack()
	}
	if _, ok, _ := q2.Next(); ok {
		t.Error("queue should be empty")
	}
	if _, err := os.Stat(filepath.Join(dir, ".00000000000000000001.jsonl.tmp-123")); !os.IsNotExist(err) {
		t.Error("temp file left")
	}
}

func TestUnwritableQueueFolderNamesTheKey(t *testing.T) {
	// A file where the folder should be: no user, root included, can
	// create the queue there.
	dir := filepath.Join(t.TempDir(), "queues")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Endpoints: []distconfig.Endpoint{endpointCfg("ep", "http://127.0.0.1:1")}, Dir: dir})
	if err == nil || !contains(err.Error(), "notifications.queue.directory") || !contains(err.Error(), dir) {
		t.Fatalf("err = %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestQueueDirEscapesNames(t *testing.T) {
	for name, want := range map[string]string{"gitlab": "gitlab", "../x": "%2E%2E%2Fx", "a b": "a%20b"} {
		if got := filepath.Base(QueueDir("/q", name)); got != want {
			t.Errorf("QueueDir(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestCursorNeverAppliesToANewSegment: a queue emptied, reopened and
// filled again counts every new event, even with a stale cursor left by a
// crash.
func TestCursorNeverAppliesToANewSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q, err := OpenQueue(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	q.Append([][]byte{[]byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":3}`)})
	for range 2 {
		q.Next()
		q.Ack()
	}
	// A crash after the last segment went but before its cursor did.
	stale, _ := os.ReadFile(filepath.Join(dir, cursorName))
	q.Next()
	q.Ack()
	if err := os.WriteFile(filepath.Join(dir, cursorName), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q2, err := OpenQueue(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	q2.Append([][]byte{[]byte(`{"b":1}`), []byte(`{"b":2}`), []byte(`{"b":3}`)})
	q2.Close()
	q3, err := OpenQueue(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if p := q3.Pending(); p != 3 {
		t.Errorf("pending = %d, want 3", p)
	}
	if n, _ := Backlog(dir); n != 3 {
		t.Errorf("backlog = %d, want 3", n)
	}
	if ev, _, _ := q3.Next(); string(ev) != `{"b":1}` {
		t.Errorf("first event = %s", ev)
	}
}

// TestQueuedEventsGoInBatches: events waiting in one segment go out in
// envelopes of up to maxDelivery events, in order.
func TestQueuedEventsGoInBatches(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(QueueDir(dir, "ep"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var evs [][]byte
	for i := range maxDelivery + 3 {
		b, _ := json.Marshal(pushEvent("r", i))
		evs = append(evs, b)
	}
	if n, err := q.Append(evs); err != nil || n != len(evs) {
		t.Fatalf("append: %d %v", n, err)
	}
	q.Close()
	rc := newReceiver(t, nil)
	m := startManager(t, Config{Endpoints: []distconfig.Endpoint{endpointCfg("ep", rc.srv.URL)}, Dir: dir})
	waitFor(t, "all events", func() bool { return len(rc.got()) == len(evs) })
	rc.mu.Lock()
	reqs := len(rc.requests)
	rc.mu.Unlock()
	if reqs != 2 {
		t.Errorf("%d requests for %d events, want 2 envelopes", reqs, len(evs))
	}
	for i, ev := range rc.got() {
		if ev.Target.Tag != fmt.Sprint("t", i) {
			t.Fatalf("event %d has tag %s", i, ev.Target.Tag)
		}
	}
	if st := m.Stats()[0]; st.Successes != int64(len(evs)) {
		t.Errorf("successes = %d", st.Successes)
	}
}

// TestRedirectsAreNotFollowed: an endpoint that answers with a redirect,
// to another host or to itself, gets a failed attempt like any other
// non-2xx answer. The target of the redirect receives nothing, so the
// endpoint's secret headers never reach it, and the event stays queued.
// The failure names the status and the Location, without its
// credentials or query.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64 // requests that reached a redirect target
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		t.Errorf("the redirect was followed: %s %s with X-Api-Key %q", r.Method, r.URL, r.Header.Get("X-Api-Key"))
	}))
	t.Cleanup(other.Close)
	// Another host name for the same machine: Go's client treats it as
	// another host.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	if otherURL == other.URL {
		t.Fatalf("cannot make another host name from %s", other.URL)
	}
	otherURL = strings.Replace(otherURL, "http://", "http://user:pw-in-location@", 1)

	for _, c := range []struct {
		name     string
		status   int
		location func(self string) string
		want     func(self string) string
	}{
		{"302 to another host", http.StatusFound,
			func(string) string { return otherURL + "/x?token=query-in-location" },
			func(string) string {
				return "endpoint answered 302 redirect to " + strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/x; redirects are not followed"
			}},
		{"308 to another host", http.StatusPermanentRedirect,
			func(string) string { return otherURL + "/y" },
			func(string) string {
				return "endpoint answered 308 redirect to " + strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/y; redirects are not followed"
			}},
		{"307 to the same host", http.StatusTemporaryRedirect,
			func(string) string { return "/moved" },
			func(self string) string {
				return "endpoint answered 307 redirect to " + self + "/moved; redirects are not followed"
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var self string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					elsewhere.Add(1)
					t.Errorf("the same-host redirect was followed: %s %s", r.Method, r.URL)
					return
				}
				w.Header().Set("Location", c.location(self))
				w.WriteHeader(c.status)
			}))
			t.Cleanup(srv.Close)
			self = srv.URL
			var logs testtools.SyncBuffer
			ep := endpointCfg("ep", srv.URL+"/notify")
			ep.Headers = map[string][]string{"X-Api-Key": {"s3cret-key"}}
			m := startManager(t, Config{Endpoints: []distconfig.Endpoint{ep}, Dir: t.TempDir(),
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			m.Notify(pushEvent("r", 1))
			waitFor(t, "the endpoint logged as failing", func() bool {
				return elsewhere.Load() > 0 || strings.Contains(logs.String(), "notification endpoint failing")
			})
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("%d requests reached the redirect target", n)
			}
			st := m.Stats()[0]
			status := fmt.Sprint(c.status, " ", http.StatusText(c.status))
			if st.Successes != 0 || st.Pending != 1 || st.Errors != 0 || st.Failures < 3 || st.Statuses[status] != st.Failures {
				t.Errorf("stats = %+v, want failed attempts answered %s and the event still pending", st, status)
			}
			want := c.want(srv.URL)
			if st.LastError != want {
				t.Errorf("last error = %q\nwant        %q", st.LastError, want)
			}
			out := logs.String()
			if !strings.Contains(out, want) {
				t.Errorf("the log does not say %q:\n%s", want, out)
			}
			for _, secret := range []string{"pw-in-location", "query-in-location", "s3cret-key"} {
				if strings.Contains(out+st.LastError, secret) {
					t.Errorf("%q is shown:\n%s", secret, out)
				}
			}
		})
	}
}
