package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"regctl/internal/clock"
	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// onDrivers runs fn on a fresh filesystem root and on a fresh bucket of a
// real S3 server (versitygw), each a driver new to the test.
func onDrivers(t *testing.T, fn func(t *testing.T, d storage.Driver)) {
	t.Run("filesystem", func(t *testing.T) {
		t.Parallel()
		d, err := storage.NewFilesystem(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, d)
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		fn(t, newS3(t, testtools.NewVersityGW(t)))
	})
}

func newS3(t *testing.T, g *testtools.VersityGW) *storage.S3 {
	t.Helper()
	d, err := storage.NewS3(t.Context(), map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": g.Bucket(t), "pathstyle": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newLog() (*slog.Logger, *testtools.SyncBuffer) {
	buf := &testtools.SyncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// fakeClock is a fake clock showing the current time, and the test's
// context carrying it (WithClock).
func fakeClock(t *testing.T) (context.Context, *clock.Fake) {
	clk := clock.NewFake(time.Now())
	return WithClock(t.Context(), clk), clk
}

// waitTimers waits until n timers of clk are armed: the goroutines the
// test drives wait on it again.
func waitTimers(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := clk.WaitTimers(ctx, n); err != nil {
		t.Fatalf("waiting for %d timers (%d armed): %v", n, clk.Timers(), err)
	}
}

// advanceRenewals moves clk through rounds renewals of leases, all of
// ttl, that renew on it: each round waits until every one of them
// waits for its next renewal, then advances a third of ttl. It returns
// once the last renewals are done.
func advanceRenewals(t *testing.T, clk *clock.Fake, leases int, ttl time.Duration, rounds int) {
	t.Helper()
	for range rounds {
		waitTimers(t, clk, leases)
		clk.Advance(ttl / 3)
	}
	waitTimers(t, clk, leases)
}

// waitUntil polls cond until it holds or limit passes.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeServer is a Switch with writes in flight under the test's control.
type fakeServer struct {
	mu          sync.Mutex
	readOnly    bool
	maintenance bool
	reason      string
	inFlight    int
}

func (f *fakeServer) ReadOnly() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readOnly
}

func (f *fakeServer) SetMaintenance(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maintenance, f.reason = true, reason
}

func (f *fakeServer) ClearMaintenance() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maintenance, f.reason = false, ""
}

func (f *fakeServer) state() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maintenance, f.reason
}

func (f *fakeServer) setInFlight(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight = n
}

func (f *fakeServer) WaitWritesIdle(ctx context.Context) error {
	for {
		f.mu.Lock()
		n := f.inFlight
		f.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// failingReads wraps a driver whose GetContent fails while fail is set
// (an unreachable bucket), and whose PutContent fails while failWrites is
// (credentials that cannot write).
type failingReads struct {
	storage.Driver
	mu         sync.Mutex
	fail       bool
	failWrites bool
}

func (f *failingReads) setFail(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = on
}

func (f *failingReads) setFailWrites(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWrites = on
}

func (f *failingReads) PutContent(ctx context.Context, p string, b []byte) error {
	f.mu.Lock()
	fail := f.failWrites
	f.mu.Unlock()
	if fail {
		return errors.New("access denied")
	}
	return f.Driver.PutContent(ctx, p, b)
}

func (f *failingReads) GetContent(ctx context.Context, p string) ([]byte, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	return f.Driver.GetContent(ctx, p)
}
