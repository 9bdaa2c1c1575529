package maintenance

import (
	"context"
	"errors"
	"testing"
	"time"

	"regctl/pkg/storage"
)

func TestManualLease(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx, clk := fakeClock(t)
		// An admin takes the lease and the command returns: it stays,
		// with its long expiry, without renewal.
		l, err := Acquire(ctx, d, Holder(ManualCommand), "read-only by an admin", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		l.Keep()
		l.Keep() // twice is fine
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release after Keep: %v", err)
		}
		cur, err := Current(ctx, d)
		if err != nil || cur == nil || cur.ID != l.Info().ID || !cur.IsManual() {
			t.Fatalf("after Keep: %+v, %v; want the manual lease", cur, err)
		}
		if left := cur.Expires.Sub(clk.Now()); left != time.Hour {
			t.Errorf("manual lease expires in %s", left)
		}
		// Another process releases it.
		got, err := ReleaseManual(ctx, d, false)
		if err != nil || got == nil || got.ID != cur.ID {
			t.Fatalf("ReleaseManual = %+v, %v", got, err)
		}
		if cur, _ := Current(ctx, d); cur != nil {
			t.Fatalf("lease still there: %+v", cur)
		}
		if got, err := ReleaseManual(ctx, d, false); got != nil || err != nil {
			t.Errorf("nothing to release: %+v, %v", got, err)
		}

		// A job's lease is refused without force.
		job, err := Acquire(ctx, d, Holder("registry-garbage-collect"), "garbage collection", DefaultLeaseTTL)
		if err != nil {
			t.Fatal(err)
		}
		defer job.Release(context.Background())
		if _, err := ReleaseManual(ctx, d, false); !errors.Is(err, ErrNotManual) {
			t.Fatalf("job lease without force: %v", err)
		}
		if cur, _ := Current(ctx, d); cur == nil {
			t.Fatal("the job's lease was deleted without force")
		}
		if got, err := ReleaseManual(ctx, d, true); err != nil || got == nil || got.IsManual() {
			t.Fatalf("force: %+v, %v", got, err)
		}
		waitTimers(t, clk, 1)
		clk.Advance(DefaultLeaseTTL / 3) // its next renewal finds it gone
		select {
		case <-job.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("the job did not notice its lease was released")
		}
	})
}
