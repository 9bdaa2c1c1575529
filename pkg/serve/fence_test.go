package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/clock"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
)

// A daemon whose process stops for longer than the fencing window (a
// SIGSTOP, a VM freeze) resumes with its watchdog not yet run: a write
// admitted before the stop, and a write arriving after it, are refused
// where they commit, with the 405 the watchdog's fence answers. Writes
// go on while heartbeats are written. The test never runs the agent's
// watchdog; time is a fake clock.
func TestDaemonFencesWritesWhereTheyCommit(t *testing.T) {
	cfg := distconfig.Default(t.TempDir())
	cfg.Storage.UploadPurging.Enabled = false
	d, err := NewDaemon(cfg, "", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	const iv = maintenance.DefaultHeartbeat
	d.HeartbeatInterval = iv
	agent := d.newAgent("")
	hs := httptest.NewServer(d.server)
	defer hs.Close()
	clk := clock.NewFake(time.Now())
	ctx := maintenance.WithClock(t.Context(), clk)
	agent.Tick(ctx) // startAgent's first round; no Run, so no watchdog

	n := 0
	push := func(body io.Reader, blob []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v2/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), body)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct{ Errors []struct{ Message string } }
		json.NewDecoder(resp.Body).Decode(&env)
		if len(env.Errors) > 0 {
			return resp.StatusCode, env.Errors[0].Message
		}
		return resp.StatusCode, ""
	}
	newBlob := func() []byte {
		n++
		return []byte("layer " + strings.Repeat("x", n))
	}
	const fenced = "read-only maintenance: this node's heartbeat cannot be written (is the storage reachable?): pulls work, pushes and deletes are refused until it ends"

	first := newBlob()
	if code, msg := push(bytes.NewReader(first), first); code != http.StatusCreated {
		t.Fatalf("push with a fresh heartbeat: %d %s", code, msg)
	}

	// A push admitted with a fresh heartbeat, whose body is still
	// arriving when the process stops for the fencing window.
	b := newBlob()
	pr, pw := io.Pipe()
	type answer struct {
		code int
		msg  string
	}
	done := make(chan answer, 1)
	go func() {
		code, msg := push(pr, b)
		done <- answer{code, msg}
	}()
	pw.Write(b[:3])
	deadline := time.Now().Add(10 * time.Second)
	for d.server.WritesInFlight() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the push was never admitted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(maintenance.GoneAfter*iv - iv/2)
	pw.Write(b[3:])
	pw.Close()
	if a := <-done; a.code != http.StatusMethodNotAllowed || a.msg != fenced {
		t.Errorf("push committing after the stop: %d %q, want 405 %q", a.code, a.msg, fenced)
	}
	if code, msg := push(bytes.NewReader(b), b); code != http.StatusMethodNotAllowed || msg != fenced {
		t.Errorf("push after the stop: %d %q, want 405 %q", code, msg, fenced)
	}
	if on := d.server.RefusesWrites(); on {
		t.Fatal("maintenance is on: the watchdog ran, the test proves nothing")
	}

	// Heartbeats written again: writes pass, for as long as they go on.
	for range 5 {
		agent.Tick(ctx)
		b := newBlob()
		if code, msg := push(bytes.NewReader(b), b); code != http.StatusCreated {
			t.Fatalf("push at %s with heartbeats written: %d %s", clk.Now().Format(time.TimeOnly), code, msg)
		}
		clk.Advance(iv)
	}
}
