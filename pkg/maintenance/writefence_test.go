package maintenance

import (
	"strings"
	"testing"

	"regctl/pkg/storage"
)

// WriteFence refuses before the first heartbeat, and once the last one
// written is as old as the watchdog's threshold, by the clock of Tick,
// with no watchdog running.
func TestAgentWriteFence(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, clk := fakeClock(t)
	const iv = DefaultHeartbeat
	f := &failingReads{Driver: d}
	a := &Agent{Driver: f, Server: &fakeServer{}, Node: LocalNode("node-1", "", "test"), Interval: iv}
	if why := a.WriteFence(); !strings.Contains(why, "not been written yet") {
		t.Errorf("before the first heartbeat: %q", why)
	}
	a.Tick(ctx)
	f.setFailWrites(true)
	for elapsed := iv / 10; ; elapsed += iv / 10 {
		clk.Advance(iv / 10)
		why := a.WriteFence()
		if elapsed < unheardAfter(iv) {
			if why != "" {
				t.Fatalf("%s after the last heartbeat: %q", elapsed, why)
			}
			a.Tick(ctx) // failing heartbeats do not count
			continue
		}
		if why != reasonUnheard {
			t.Fatalf("%s after the last heartbeat: %q, want %q", elapsed, why, reasonUnheard)
		}
		break
	}
	f.setFailWrites(false)
	a.Tick(ctx)
	if why := a.WriteFence(); why != "" {
		t.Errorf("after a heartbeat written again: %q", why)
	}
}
