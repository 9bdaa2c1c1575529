package registryd

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/distconfig"
	"regctl/pkg/notify"
)

// webhook is a notification endpoint under httptest.
type webhook struct {
	mu     sync.Mutex
	events []notify.Event
	ctypes []string
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env notify.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, env.Events...)
	h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
}

func (h *webhook) wait(t *testing.T, n int) []notify.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.mu.Lock()
		got := append([]notify.Event(nil), h.events...)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d events, want %d: %+v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsReachAWebhook runs the API with a real notify.Manager and
// checks what a receiver gets for push, pull, mount and delete.
// startHook is a webhook receiver and a notify.Manager sending to it.
func startHook(t *testing.T) (*webhook, *notify.Manager) {
	t.Helper()
	hook := &webhook{}
	hs := httptest.NewServer(hook)
	t.Cleanup(hs.Close)
	m, err := notify.New(notify.Config{
		Endpoints: []distconfig.Endpoint{{Name: "hook", URL: hs.URL, Timeout: 5 * time.Second, MaxRetries: 3, Backoff: 50 * time.Millisecond}},
		Dir:       t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(notify.Source{Addr: "registry:5000", InstanceID: "node-1"})
	t.Cleanup(m.Stop)
	return hook, m
}

func TestEventsReachAWebhook(t *testing.T) {
	hook, m := startHook(t)
	e := newMfEnv(t, Options{DeleteEnabled: true, Notifier: m})

	// 1: blob push through an upload, 2: manifest push by tag.
	layer := []byte("layer bytes for events")
	ld := digest.FromBytes(layer)
	up := e.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
	loc := up.hdr.Get("Location")
	req, _ := http.NewRequest(http.MethodPut, loc+"?digest="+ld.String(), bytes.NewReader(layer))
	if !bytes.HasPrefix([]byte(loc), []byte("http")) {
		req, _ = http.NewRequest(http.MethodPut, e.srv.URL+loc+"?digest="+ld.String(), bytes.NewReader(layer))
	}
	req.Header.Set("User-Agent", "events-test/1.0")
	if res, err := e.srv.Client().Do(req); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %v %v", res, err)
	}
	cfg := e.putBlob("team/app", ocispec.MediaTypeImageConfig, []byte(`{"x":1}`))
	body := mustJSON(t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg,
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}},
	})
	md := e.mustPush("team/app", "v1", ocispec.MediaTypeImageManifest, body)
	// 3: manifest pull by tag (HEAD sends none), 4: blob pull.
	e.do(http.MethodHead, "/v2/team/app/manifests/v1", nil, nil)
	if r := e.do(http.MethodGet, "/v2/team/app/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil); r.code != 200 {
		t.Fatalf("manifest get: %d", r.code)
	}
	e.do(http.MethodHead, "/v2/team/app/blobs/"+ld.String(), nil, nil)
	if r := e.do(http.MethodGet, "/v2/team/app/blobs/"+ld.String(), nil, nil); r.code != 200 {
		t.Fatalf("blob get: %d", r.code)
	}
	// 5: mount into another repository, 6: tag delete, 7: manifest delete.
	if r := e.do(http.MethodPost, "/v2/team/other/blobs/uploads/?mount="+ld.String()+"&from=team/app", nil, nil); r.code != 201 {
		t.Fatalf("mount: %d %s", r.code, r.body)
	}
	if r := e.do(http.MethodDelete, "/v2/team/app/manifests/v1", nil, nil); r.code != 202 {
		t.Fatalf("tag delete: %d %s", r.code, r.body)
	}
	if r := e.do(http.MethodDelete, "/v2/team/app/manifests/"+md.String(), nil, nil); r.code != 202 {
		t.Fatalf("manifest delete: %d %s", r.code, r.body)
	}

	got := hook.wait(t, 7)
	if len(got) != 7 {
		t.Fatalf("got %d events, want 7: %+v", len(got), got)
	}
	for _, ct := range hook.ctypes {
		if ct != notify.EventsMediaType {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	base := e.srv.URL
	want := []struct {
		action string
		target notify.Target
	}{
		{"push", notify.Target{MediaType: "application/octet-stream", Digest: ld.String(), Size: int64(len(layer)), Length: int64(len(layer)),
			Repository: "team/app", URL: base + "/v2/team/app/blobs/" + ld.String()}},
		{"push", notify.Target{MediaType: ocispec.MediaTypeImageManifest, Digest: md.String(), Size: int64(len(body)), Length: int64(len(body)),
			Repository: "team/app", URL: base + "/v2/team/app/manifests/" + md.String(), Tag: "v1",
			References: []ocispec.Descriptor{cfg, {MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}}}},
		// A pull carries the references too, as Distribution's do (its
		// bridge builds push and pull events alike).
		{"pull", notify.Target{MediaType: ocispec.MediaTypeImageManifest, Digest: md.String(), Size: int64(len(body)), Length: int64(len(body)),
			Repository: "team/app", URL: base + "/v2/team/app/manifests/" + md.String(), Tag: "v1",
			References: []ocispec.Descriptor{cfg, {MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}}}},
		{"pull", notify.Target{MediaType: "application/octet-stream", Digest: ld.String(), Size: int64(len(layer)), Length: int64(len(layer)),
			Repository: "team/app", URL: base + "/v2/team/app/blobs/" + ld.String()}},
		{"mount", notify.Target{MediaType: "application/octet-stream", Digest: ld.String(), Size: int64(len(layer)), Length: int64(len(layer)),
			Repository: "team/other", FromRepository: "team/app", URL: base + "/v2/team/other/blobs/" + ld.String()}},
		{"delete", notify.Target{Repository: "team/app", Tag: "v1"}},
		{"delete", notify.Target{Repository: "team/app", Digest: md.String()}},
	}
	for i, w := range want {
		ev := got[i]
		gt, _ := json.Marshal(ev.Target)
		wt, _ := json.Marshal(w.target)
		if ev.Action != w.action || !bytes.Equal(gt, wt) {
			t.Errorf("event %d: %s %s\nwant %s %s", i, ev.Action, gt, w.action, wt)
		}
		if ev.ID == "" || ev.Timestamp.IsZero() || ev.Request.ID == "" || ev.Request.Method == "" || ev.Request.Addr == "" ||
			ev.Source.InstanceID != "node-1" || ev.Source.Addr != "registry:5000" {
			t.Errorf("event %d lacks envelope fields: %+v", i, ev)
		}
	}
	if got[0].Request.UserAgent != "events-test/1.0" || got[0].Request.Method != "PUT" {
		t.Errorf("request of the blob push = %+v", got[0].Request)
	}
}

// notifications.events.includereferences: false leaves the references
// out of manifest push and pull events, as in Distribution.
func TestEventsWithoutReferences(t *testing.T) {
	hook, m := startHook(t)
	e := newMfEnv(t, Options{Notifier: m, NoReferences: true})
	cfg := e.putBlob("team/app", ocispec.MediaTypeImageConfig, []byte(`{"x":2}`))
	body := mustJSON(t, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{}})
	e.mustPush("team/app", "v1", ocispec.MediaTypeImageManifest, body)
	if r := e.do(http.MethodGet, "/v2/team/app/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil); r.code != 200 {
		t.Fatalf("manifest get: %d", r.code)
	}
	var manifestEvents int
	for _, ev := range hook.wait(t, 2) { // manifest push and pull
		if ev.Target.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		manifestEvents++
		if ev.Target.References != nil {
			t.Errorf("%s event carries references: %+v", ev.Action, ev.Target.References)
		}
	}
	if manifestEvents != 2 {
		t.Errorf("%d manifest events, want a push and a pull", manifestEvents)
	}
}
