package registryd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// errMessage is the first OCI error message of a response.
func (r result) errMessage() string {
	var env struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Message
}

// Maintenance refuses new writes with a 405 naming it, lets the write in
// flight finish (WaitWritesIdle waits for it), keeps reads working, and
// is independent of the configured read-only mode.
func TestMaintenanceGate(t *testing.T) {
	e := newBlobEnv(t, nil)
	r := e.do(http.MethodPost, "/v2/app/blobs/uploads/", nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	loc := r.h.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = e.hs.URL + loc
	}

	// A PATCH whose body is still arriving when maintenance starts.
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
	pw.Write([]byte("first part "))
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.WritesInFlight() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the PATCH was never admitted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	e.srv.SetMaintenance("garbage collection by host/1/regctl gc")
	if reason, on := e.srv.Maintenance(); !on || reason != "garbage collection by host/1/regctl gc" {
		t.Fatalf("Maintenance() = %q, %v", reason, on)
	}
	if !e.srv.RefusesWrites() || e.srv.ReadOnly() {
		t.Fatalf("RefusesWrites %v, ReadOnly %v; want true, false", e.srv.RefusesWrites(), e.srv.ReadOnly())
	}
	r = e.do(http.MethodPost, "/v2/app/blobs/uploads/", nil)
	if r.code != http.StatusMethodNotAllowed || r.errCode() != CodeUnsupported ||
		!strings.Contains(r.errMessage(), "read-only maintenance: garbage collection by host/1/regctl gc") {
		t.Fatalf("POST in maintenance: %d %s", r.code, r.body)
	}
	if strings.Contains(r.errMessage(), "storage.maintenance.readonly") {
		t.Errorf("message %q blames the config", r.errMessage())
	}
	if r := e.do(http.MethodGet, "/v2/", nil); r.code != http.StatusOK {
		t.Errorf("GET /v2/ in maintenance: %d", r.code)
	}

	// The admitted PATCH holds WaitWritesIdle until it ends, then
	// succeeds: maintenance does not cut writes short.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	err := e.srv.WaitWritesIdle(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitWritesIdle with a PATCH in flight: %v", err)
	}
	idle := make(chan error, 1)
	go func() { idle <- e.srv.WaitWritesIdle(t.Context()) }()
	pw.Write([]byte("last part"))
	pw.Close()
	if code := <-patched; code != http.StatusAccepted {
		t.Fatalf("PATCH admitted before maintenance: %d, want 202", code)
	}
	if err := <-idle; err != nil {
		t.Fatal(err)
	}
	if n := e.srv.WritesInFlight(); n != 0 {
		t.Fatalf("WritesInFlight = %d after the PATCH", n)
	}

	e.srv.ClearMaintenance()
	if r := e.do(http.MethodPost, "/v2/app/blobs/uploads/", nil); r.code != http.StatusAccepted {
		t.Fatalf("POST after maintenance: %d %s", r.code, r.body)
	}

	// Both causes: the answer names both, and ending maintenance leaves
	// the configured mode on.
	e.srv.SetReadOnly(true)
	e.srv.SetMaintenance("cutover by h/2/regctl migrate-storage")
	r = e.do(http.MethodDelete, loc, nil)
	if msg := r.errMessage(); r.code != http.StatusMethodNotAllowed ||
		!strings.Contains(msg, "storage.maintenance.readonly.enabled") || !strings.Contains(msg, "cutover by h/2") {
		t.Fatalf("DELETE with both: %d %s", r.code, r.body)
	}
	e.srv.ClearMaintenance()
	r = e.do(http.MethodDelete, loc, nil)
	if msg := r.errMessage(); r.code != http.StatusMethodNotAllowed ||
		!strings.Contains(msg, "read-only maintenance mode (storage.maintenance.readonly.enabled)") || strings.Contains(msg, "cutover") {
		t.Fatalf("DELETE in config read-only: %d %s", r.code, r.body)
	}
	e.srv.SetReadOnly(false)
	if r := e.do(http.MethodDelete, loc, nil); r.code != http.StatusNoContent {
		t.Fatalf("DELETE upload after both ended: %d %s", r.code, r.body)
	}
}
