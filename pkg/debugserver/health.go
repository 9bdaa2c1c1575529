// Package debugserver is the registry's second listener, http.debug.addr:
// /debug/health (periodic checks, 503 with a JSON body naming what
// fails), /debug/vars (expvar, with the registry's own figures),
// /debug/pprof/ and, when enabled, the Prometheus metrics.
package debugserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one periodic health check.
type Check struct {
	// Name is the key the failure is reported under, as Distribution
	// names it: "storagedriver_filesystem", "storagedriver_s3".
	Name     string
	Interval time.Duration // 0: 10s
	// Threshold is the failures in a row before the check reports down;
	// 0 counts as 1.
	Threshold int
	Run       func(ctx context.Context) error
}

// Health runs checks and knows which fail.
type Health struct {
	log    *slog.Logger
	mu     sync.Mutex
	states map[string]*checkState
	// down counts the checks that are down, for Down on every request.
	down atomic.Int32
}

type checkState struct {
	failures int
	down     bool
	err      string
	ran      bool
}

// NewHealth makes an empty Health; log receives down and recovered
// transitions.
func NewHealth(log *slog.Logger) *Health {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{log: log, states: map[string]*checkState{}}
}

// Run runs c now and then every interval until ctx ends. Call it on a
// goroutine of its own per check.
func (h *Health) Run(ctx context.Context, c Check) {
	interval := c.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	h.mu.Lock()
	if old := h.states[c.Name]; old != nil && old.down {
		h.down.Add(-1)
	}
	h.states[c.Name] = &checkState{}
	h.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := c.Run(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.record(c, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Health) record(c Check, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.states[c.Name]
	st.ran = true
	if err == nil {
		if st.down {
			h.log.Info("health check recovered", "check", c.Name, "after_failures", st.failures)
			h.down.Add(-1)
		}
		st.failures, st.down, st.err = 0, false, ""
		return
	}
	st.failures++
	st.err = err.Error()
	if st.failures >= max(c.Threshold, 1) && !st.down {
		st.down = true
		h.down.Add(1)
		h.log.Error("health check failing", "check", c.Name, "failures", st.failures, "err", err)
	}
}

// Down reports whether some check is down: cheap enough for every
// request.
func (h *Health) Down() bool { return h.down.Load() > 0 }

// Failing maps each check that is down to its last error.
func (h *Health) Failing() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for name, st := range h.states {
		if st.down {
			out[name] = st.err
		}
	}
	return out
}

// Names are the checks registered so far, sorted.
func (h *Health) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name := range h.states {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP answers /debug/health as Distribution does: 200 with {} when
// every check passes, 503 with {"check": "error"} when some fail.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	failing := h.Failing()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	json.NewEncoder(w).Encode(failing)
}
