package debugserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestHealthThresholdAndRecovery(t *testing.T) {
	var fail atomic.Bool
	var runs atomic.Int64
	h := NewHealth(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx, Check{Name: "storagedriver_filesystem", Interval: 20 * time.Millisecond, Threshold: 3,
		Run: func(context.Context) error {
			runs.Add(1)
			if fail.Load() {
				return errors.New("root folder gone")
			}
			return nil
		}})
	mux := Handler(Options{Health: h})
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("first run", func() bool { return runs.Load() > 0 })
	if code, body := get(t, mux, "/debug/health"); code != 200 || strings.TrimSpace(body) != "{}" || h.Down() {
		t.Fatalf("healthy: %d %s, Down %v", code, body, h.Down())
	}
	fail.Store(true)
	start := runs.Load()
	wait("503", func() bool { c, _ := get(t, mux, "/debug/health"); return c == 503 })
	if n := runs.Load() - start; n < 3 {
		t.Errorf("down after %d failures, threshold is 3", n)
	}
	_, body := get(t, mux, "/debug/health")
	var failing map[string]string
	if err := json.Unmarshal([]byte(body), &failing); err != nil || failing["storagedriver_filesystem"] != "root folder gone" {
		t.Errorf("body = %s (%v)", body, err)
	}
	if !h.Down() {
		t.Error("Down() = false while /debug/health answers 503")
	}
	fail.Store(false)
	wait("recovery", func() bool { c, _ := get(t, mux, "/debug/health"); return c == 200 })
	if h.Down() {
		t.Error("Down() = true after recovery")
	}
}

func TestVarsAndPprof(t *testing.T) {
	mux := Handler(Options{Vars: func() any { return map[string]int{"answer": 42} }})
	code, body := get(t, mux, "/debug/vars")
	var vars map[string]json.RawMessage
	if code != 200 || json.Unmarshal([]byte(body), &vars) != nil {
		t.Fatalf("vars: %d %s", code, body)
	}
	var reg map[string]int
	if json.Unmarshal(vars["registry"], &reg) != nil || reg["answer"] != 42 || vars["memstats"] == nil {
		t.Errorf("vars lack registry or memstats: %s", body)
	}
	if code, body := get(t, mux, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof: %d", code)
	}
	if code, _ := get(t, mux, "/metrics"); code != 404 {
		t.Errorf("metrics without prometheus enabled: %d, want 404", code)
	}
}
