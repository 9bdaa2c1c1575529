package maintenance

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// hangingReads is an unreachable bucket whose requests hang until their
// deadline, as a black-holed network does.
type hangingReads struct {
	failingReads
}

func (h *hangingReads) GetContent(ctx context.Context, p string) ([]byte, error) {
	h.mu.Lock()
	fail := h.fail
	h.mu.Unlock()
	if fail {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Driver.GetContent(ctx, p)
}

// Run fails closed 3 intervals after the last successful read of the
// lease, even when each read hangs for a whole interval. This and the
// next test run on real time, on purpose: reads that hang until their
// deadline, and the watchdog ticking beside them, are real timing
// (TestAgentFenceThresholds checks the thresholds on a fake clock).
func TestAgentRunFailsClosedOnTime(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingReads{failingReads{Driver: d}}
	srv := &fakeServer{}
	const iv = 400 * time.Millisecond // shorter beats flake on a loaded machine
	logs := &testtools.SyncBuffer{}
	a := &Agent{Driver: h, Server: srv, Node: LocalNode("node-1", "", "test"), Interval: iv, Log: slog.New(slog.NewTextHandler(logs, nil))}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	defer runAgent(t, a)()
	time.Sleep(iv)
	h.setFail(true)
	cut := time.Now()
	for {
		if on, _ := srv.state(); on {
			break
		}
		if time.Since(cut) > 10*iv {
			t.Fatal("still taking writes 10 intervals after the bucket went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(cut)
	t.Logf("failed closed %s after the cut (interval %s)", took, iv)
	// Counting 3 hanging reads would take up to 4-5 intervals.
	if took > GoneAfter*iv+iv/2 {
		t.Errorf("failed closed after %s, want within %s", took, GoneAfter*iv)
	}
	h.setFail(false)
	waitUntil(t, 10*iv, "writes again once the lease reads", func() bool { on, _ := srv.state(); return !on })
}

// A node whose heartbeat cannot be written stops taking writes before
// jobs count it as gone (and stop waiting for it), and takes them again
// once a heartbeat is written.
func TestAgentRunStopsWritesWhenUnheard(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &failingReads{Driver: d}
	srv := &fakeServer{}
	const iv = 400 * time.Millisecond // shorter beats flake on a loaded machine
	a := &Agent{Driver: w, Server: srv, Node: LocalNode("node-1", "", "test"), Interval: iv}
	defer runAgent(t, a)()
	time.Sleep(iv)
	w.setFailWrites(true)
	cut := time.Now()
	waitUntil(t, 10*iv, "writes refused", func() bool { on, _ := srv.state(); return on })
	took := time.Since(cut)
	if _, reason := srv.state(); !strings.Contains(reason, "heartbeat cannot be written") {
		t.Errorf("reason %q", reason)
	}
	// Readers count the node gone GoneAfter intervals after its last
	// heartbeat; it must have stopped before.
	hb := heartbeatOf(t, d, "node-1")
	if stoppedAt := cut.Add(took); !stoppedAt.Before(hb.LastSeen.Add(GoneAfter * iv)) {
		t.Errorf("stopped writes %s after the last heartbeat, not before readers count it gone (%s)", stoppedAt.Sub(hb.LastSeen), GoneAfter*iv)
	}
	w.setFailWrites(false)
	waitUntil(t, 10*iv, "writes taken again", func() bool { on, _ := srv.state(); return !on })
}

// The watchdog's thresholds, on a fake clock: writes stop the moment
// the lease has gone unread for GoneAfter intervals, or the heartbeat
// unwritten for half an interval less, and not a moment before.
func TestAgentFenceThresholds(t *testing.T) {
	const iv = DefaultHeartbeat
	for _, tc := range []struct {
		name, reason string
		after        time.Duration
		cut          func(*failingReads)
	}{
		{"lease unread", "cannot be read", GoneAfter * iv, func(f *failingReads) { f.setFail(true) }},
		{"heartbeat unwritten", "heartbeat cannot be written", GoneAfter*iv - iv/2, func(f *failingReads) { f.setFailWrites(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := storage.NewFilesystem(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx, clk := fakeClock(t)
			f := &failingReads{Driver: d}
			srv := &fakeServer{}
			a := &Agent{Driver: f, Server: srv, Node: LocalNode("node-1", "", "test"), Interval: iv}
			a.Tick(ctx) // the last good read and heartbeat
			last := clk.Now()
			tc.cut(f)
			for {
				clk.Advance(iv / 10)
				elapsed := clk.Since(last)
				a.fence(ctx, clk.Now())
				on, reason := srv.state()
				if elapsed < tc.after && on {
					t.Fatalf("refused writes %s after the last good tick (%q), before %s", elapsed, reason, tc.after)
				}
				if elapsed >= tc.after {
					if !on || !strings.Contains(reason, tc.reason) {
						t.Fatalf("%s after the last good tick: maintenance %v %q, want writes refused", elapsed, on, reason)
					}
					break
				}
				if elapsed%iv == 0 {
					a.Tick(ctx) // what fails goes on failing
				}
			}
		})
	}
}

// runAgent ticks once, as the daemon does, then runs a until the
// returned stop is called.
func runAgent(t *testing.T, a *Agent) (stop func()) {
	a.Tick(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
