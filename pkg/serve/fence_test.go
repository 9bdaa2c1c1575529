package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/clock"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
)

const fencedMessage = "read-only maintenance: this node's heartbeat cannot be written (is the storage reachable?): pulls work, pushes and deletes are refused until it ends"

// fenceRig is a daemon whose agent has written one heartbeat on a fake
// clock and whose watchdog never runs, so that only the write fence
// refuses writes once the clock moves past the fencing window.
type fenceRig struct {
	t     *testing.T
	d     *Daemon
	url   string
	clk   *clock.Fake
	ctx   context.Context
	agent *maintenance.Agent
}

const fenceInterval = maintenance.DefaultHeartbeat

func newFenceRig(t *testing.T) *fenceRig {
	t.Helper()
	cfg := distconfig.Default(t.TempDir())
	cfg.Storage.UploadPurging.Enabled = false
	d, err := NewDaemon(cfg, "", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.HeartbeatInterval = fenceInterval
	agent := d.newAgent("")
	hs := httptest.NewServer(d.server)
	t.Cleanup(hs.Close)
	clk := clock.NewFake(time.Now())
	ctx := maintenance.WithClock(t.Context(), clk)
	agent.Tick(ctx) // startAgent's first round; no Run, so no watchdog
	return &fenceRig{t: t, d: d, url: hs.URL, clk: clk, ctx: ctx, agent: agent}
}

// do sends a request and answers its status and first error message.
func (f *fenceRig) do(method, path, ctype string, body io.Reader) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct{ Errors []struct{ Message string } }
	json.NewDecoder(resp.Body).Decode(&env)
	if len(env.Errors) > 0 {
		return resp.StatusCode, env.Errors[0].Message
	}
	return resp.StatusCode, ""
}

// pushBlob uploads blob into repo in one POST.
func (f *fenceRig) pushBlob(repo string, body io.Reader, blob []byte) (int, string) {
	f.t.Helper()
	return f.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(blob).String(), "application/octet-stream", body)
}

// stalled sends a request whose body starts arriving with a fresh
// heartbeat, waits for the daemon to admit it, then stops the process
// for the fencing window (moves the clock) before the rest of the body
// arrives: the request commits with the heartbeat stale.
func (f *fenceRig) stalled(send func(body io.Reader) (int, string), body []byte) (int, string) {
	f.t.Helper()
	pr, pw := io.Pipe()
	type answer struct {
		code int
		msg  string
	}
	done := make(chan answer, 1)
	go func() {
		code, msg := send(pr)
		done <- answer{code, msg}
	}()
	head := min(3, len(body))
	pw.Write(body[:head])
	deadline := time.Now().Add(10 * time.Second)
	for f.d.server.WritesInFlight() != 1 {
		if time.Now().After(deadline) {
			f.t.Fatal("the request was never admitted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.clk.Advance(maintenance.GoneAfter*fenceInterval - fenceInterval/2)
	pw.Write(body[head:])
	pw.Close()
	a := <-done
	if f.d.server.RefusesWrites() {
		f.t.Fatal("maintenance is on: the watchdog ran, the test proves nothing")
	}
	return a.code, a.msg
}

// A daemon whose process stops for longer than the fencing window (a
// SIGSTOP, a VM freeze) resumes with its watchdog not yet run: a write
// admitted before the stop, and a write arriving after it, are refused
// where they commit, with the 405 the watchdog's fence answers. Writes
// go on while heartbeats are written. The test never runs the agent's
// watchdog; time is a fake clock.
func TestDaemonFencesWritesWhereTheyCommit(t *testing.T) {
	f := newFenceRig(t)
	n := 0
	newBlob := func() []byte {
		n++
		return []byte("layer " + strings.Repeat("x", n))
	}
	push := func(body io.Reader, blob []byte) (int, string) {
		t.Helper()
		return f.pushBlob("app", body, blob)
	}

	first := newBlob()
	if code, msg := push(bytes.NewReader(first), first); code != http.StatusCreated {
		t.Fatalf("push with a fresh heartbeat: %d %s", code, msg)
	}

	// A push admitted with a fresh heartbeat, whose body is still
	// arriving when the process stops for the fencing window.
	b := newBlob()
	code, msg := f.stalled(func(body io.Reader) (int, string) { return push(body, b) }, b)
	if code != http.StatusMethodNotAllowed || msg != fencedMessage {
		t.Errorf("push committing after the stop: %d %q, want 405 %q", code, msg, fencedMessage)
	}
	if code, msg := push(bytes.NewReader(b), b); code != http.StatusMethodNotAllowed || msg != fencedMessage {
		t.Errorf("push after the stop: %d %q, want 405 %q", code, msg, fencedMessage)
	}

	// Heartbeats written again: writes pass, for as long as they go on.
	for range 5 {
		f.agent.Tick(f.ctx)
		b := newBlob()
		if code, msg := push(bytes.NewReader(b), b); code != http.StatusCreated {
			t.Fatalf("push at %s with heartbeats written: %d %s", f.clk.Now().Format(time.TimeOnly), code, msg)
		}
		f.clk.Advance(fenceInterval)
	}
}

// A manifest PUT admitted with a fresh heartbeat, whose body arrives
// after the process stopped for the fencing window, is refused where it
// stores the revision: neither the revision nor the tag exists after.
func TestDaemonFencesManifestPutWhereItCommits(t *testing.T) {
	f := newFenceRig(t)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if code, msg := f.pushBlob("app", bytes.NewReader(config), config); code != http.StatusCreated {
		t.Fatalf("config push with a fresh heartbeat: %d %s", code, msg)
	}
	const mt = "application/vnd.oci.image.manifest.v1+json"
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		digest.FromBytes(config).String() + `","size":` + strconv.Itoa(len(config)) + `},"layers":[]}`)

	code, msg := f.stalled(func(body io.Reader) (int, string) {
		return f.do(http.MethodPut, "/v2/app/manifests/v1", mt, body)
	}, manifest)
	if code != http.StatusMethodNotAllowed || msg != fencedMessage {
		t.Errorf("manifest put committing after the stop: %d %q, want 405 %q", code, msg, fencedMessage)
	}
	for _, ref := range []string{"v1", digest.FromBytes(manifest).String()} {
		if code, msg := f.do(http.MethodGet, "/v2/app/manifests/"+ref, "", nil); code != http.StatusNotFound {
			t.Errorf("GET manifest %s after the refused put: %d %s, want 404", ref, code, msg)
		}
	}
}

// A cross-repository mount admitted with a fresh heartbeat, whose
// (empty, ignored) body ends after the process stopped for the fencing
// window, is refused where it links the layer into the target.
func TestDaemonFencesMountWhereItCommits(t *testing.T) {
	f := newFenceRig(t)
	blob := []byte("a layer to mount")
	if code, msg := f.pushBlob("other", bytes.NewReader(blob), blob); code != http.StatusCreated {
		t.Fatalf("push with a fresh heartbeat: %d %s", code, msg)
	}
	d := digest.FromBytes(blob).String()

	code, msg := f.stalled(func(body io.Reader) (int, string) {
		return f.do(http.MethodPost, "/v2/app/blobs/uploads/?mount="+d+"&from=other", "", body)
	}, []byte("   "))
	if code != http.StatusMethodNotAllowed || msg != fencedMessage {
		t.Errorf("mount committing after the stop: %d %q, want 405 %q", code, msg, fencedMessage)
	}
	if code, msg := f.do(http.MethodHead, "/v2/app/blobs/"+d, "", nil); code != http.StatusNotFound {
		t.Errorf("HEAD the blob in the target after the refused mount: %d %s, want 404", code, msg)
	}
	if code, msg := f.do(http.MethodHead, "/v2/other/blobs/"+d, "", nil); code != http.StatusOK {
		t.Errorf("HEAD the blob in its source: %d %s, want 200", code, msg)
	}
}
