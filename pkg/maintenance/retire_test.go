package maintenance

import (
	"context"
	"errors"
	"testing"
	"time"

	"regctl/pkg/storage"
)

// Retire keeps the lease (same id, so acknowledgements stay valid) for
// good: it outlives its ttl, Release leaves it, and another job cannot
// take it.
func TestLeaseRetire(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, clk := fakeClock(t)
	const ttl = DefaultLeaseTTL
	l, err := Acquire(ctx, d, "h/1/migrate-storage", "storage cutover to S3", ttl)
	if err != nil {
		t.Fatal(err)
	}
	id := l.Info().ID
	if err := l.Retire(ctx, "moved to S3"); err != nil {
		t.Fatal(err)
	}
	if n := clk.Timers(); n != 0 {
		t.Errorf("%d timers armed after Retire: it is still renewed", n)
	}
	clk.Advance(2 * ttl)
	cur, err := Current(ctx, d)
	if err != nil || cur == nil || cur.ID != id || cur.Reason != "moved to S3" || cur.Expires.Sub(clk.Now()) < 365*24*time.Hour {
		t.Fatalf("Current after Retire = %+v, %v", cur, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := Current(ctx, d); cur == nil {
		t.Fatal("Release after Retire deleted the lease")
	}
	var held *HeldError
	if _, err := Acquire(ctx, d, "h/2/gc", "garbage collection", ttl); !errors.As(err, &held) {
		t.Fatalf("Acquire on a retired storage: %v, want HeldError", err)
	}
	if err := l.Retire(ctx, "again"); err == nil {
		t.Error("a second Retire succeeded")
	}
}

// A Retire that fails leaves the lease renewing, so it can be released.
func TestLeaseRetireFailureKeepsRenewing(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, clk := fakeClock(t)
	const ttl = DefaultLeaseTTL
	l, err := Acquire(ctx, d, "h/1/migrate-storage", "cutover", ttl)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Retire(cctx, "moved"); err == nil {
		t.Fatal("Retire with a cancelled context succeeded")
	}
	advanceRenewals(t, clk, 1, ttl, 6)
	if cur, err := Current(ctx, d); err != nil || cur == nil || cur.Reason != "cutover" {
		t.Fatalf("after a failed Retire: %+v, %v; want the lease renewed", cur, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := Current(ctx, d); cur != nil {
		t.Fatalf("Release after a failed Retire left %+v", cur)
	}
}
