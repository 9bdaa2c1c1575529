package maintenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/pkg/storage"
)

// putLease writes lease.json as another process would have.
func putLease(t *testing.T, d storage.Driver, l LeaseInfo) {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(t.Context(), LeasePath, b); err != nil {
		t.Fatal(err)
	}
}

// crashedLease is a lease whose holder stopped renewing it a while ago.
func crashedLease() LeaseInfo {
	now := time.Now()
	return LeaseInfo{ID: newID(), Holder: "old-host/42/regctl registry-garbage-collect", Reason: "garbage collection",
		Started: now.Add(-time.Hour).UTC(), Expires: now.Add(-time.Minute).UTC()}
}

func TestLeaseAcquireRenewRelease(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx, clk := fakeClock(t)
		if cur, err := Current(ctx, d); cur != nil || err != nil {
			t.Fatalf("Current before any lease = %v, %v", cur, err)
		}
		const ttl = DefaultLeaseTTL
		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", ttl)
		if err != nil {
			t.Fatal(err)
		}
		first := l.Info()
		if first.Holder != "h/1/gc" || first.Reason != "garbage collection" || first.ID == "" ||
			first.Expires.Sub(first.Started) != ttl {
			t.Fatalf("Info = %+v", first)
		}
		cur, err := Current(ctx, d)
		if err != nil || cur == nil || cur.ID != first.ID || !cur.Started.Equal(first.Started) {
			t.Fatalf("Current = %+v, %v; want %+v", cur, err, first)
		}

		// Well past the first expiry the lease is alive: it renewed
		// itself, in the storage too.
		advanceRenewals(t, clk, 1, ttl, 6)
		cur, err = Current(ctx, d)
		if err != nil || cur == nil || cur.ID != first.ID {
			t.Fatalf("Current after 2 ttl = %+v, %v; want the renewed lease", cur, err)
		}
		if !cur.Expires.After(first.Expires) || !cur.Started.Equal(first.Started) {
			t.Errorf("renewed lease %+v: want a later expiry and the same start as %+v", cur, first)
		}
		select {
		case <-l.Lost():
			t.Fatalf("lease lost: %v", l.Err())
		default:
		}

		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("second Release: %v", err)
		}
		if cur, err := Current(ctx, d); cur != nil || err != nil {
			t.Fatalf("Current after Release = %v, %v", cur, err)
		}
		if _, err := d.Stat(ctx, LeasePath); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("lease.json after Release: %v", err)
		}
		// No takeover lock is left behind.
		if locks, err := d.List(ctx, takeoverDir); len(locks) > 0 {
			t.Errorf("takeover locks left: %q, %v", locks, err)
		}
		// Renewal has stopped: nothing comes back.
		if n := clk.Timers(); n != 0 {
			t.Errorf("%d timers still armed after Release", n)
		}
		clk.Advance(ttl)
		if _, err := d.Stat(ctx, LeasePath); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("lease.json reappeared after Release: %v", err)
		}
	})
}

func TestLeaseHeld(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		a, err := Acquire(ctx, d, "host-a/1/regctl registry-garbage-collect", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Acquire(ctx, d, "host-b/2/regctl migrate-storage", "cutover", time.Minute)
		if err == nil {
			b.Release(ctx)
			t.Fatal("second Acquire succeeded while the first lease is live")
		}
		var held *HeldError
		if !errors.Is(err, ErrHeld) || !errors.As(err, &held) || held.Lease.ID != a.Info().ID {
			t.Fatalf("second Acquire: %v, want a HeldError for the first lease", err)
		}
		for _, want := range []string{"host-a/1/regctl registry-garbage-collect", "garbage collection", "expires",
			a.Info().Expires.Local().Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		b, err = Acquire(ctx, d, "host-b/2/regctl migrate-storage", "cutover", time.Minute)
		if err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		b.Release(ctx)
	})
}

func TestLeaseExpiredTakeover(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		old := crashedLease()
		putLease(t, d, old)
		if cur, err := Current(ctx, d); cur != nil || err != nil {
			t.Fatalf("Current on an expired lease = %v, %v; want none", cur, err)
		}
		l, err := Acquire(ctx, d, "new/2/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatalf("Acquire over an expired lease: %v", err)
		}
		defer l.Release(ctx)
		cur, err := Current(ctx, d)
		if err != nil || cur == nil || cur.ID != l.Info().ID || cur.Holder != "new/2/gc" {
			t.Fatalf("Current = %+v, %v; want the new lease", cur, err)
		}
		if locks, _ := d.List(ctx, takeoverDir); len(locks) > 0 {
			t.Errorf("takeover locks left: %q", locks)
		}
	})
}

func TestLeaseCorruptTakeover(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		if err := d.PutContent(ctx, LeasePath, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		if _, err := Current(ctx, d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Current on a corrupt lease: %v, want ErrCorrupt", err)
		}
		l, err := Acquire(ctx, d, "new/2/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatalf("Acquire over a corrupt lease: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Several processes find the same expired lease and take it over at
// once: exactly one wins, the others are told who holds it, and the
// winner's lease is the one in the storage (no slow taker deleted it).
func TestLeaseConcurrentTakeover(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		const takers = 4
		for round := range 20 {
			putLease(t, d, crashedLease())
			var wg sync.WaitGroup
			leases := make([]*Lease, takers)
			errs := make([]error, takers)
			for i := range takers {
				wg.Go(func() {
					leases[i], errs[i] = Acquire(ctx, d, fmt.Sprintf("taker-%d/%d/gc", i, i), "garbage collection", time.Minute)
				})
			}
			wg.Wait()
			var winner *Lease
			for i := range takers {
				switch {
				case errs[i] == nil && winner != nil:
					t.Fatalf("round %d: %s and %s both hold the lease", round, winner.Info().Holder, leases[i].Info().Holder)
				case errs[i] == nil:
					winner = leases[i]
				case !errors.Is(errs[i], ErrHeld):
					t.Fatalf("round %d: taker %d: %v, want ErrHeld", round, i, errs[i])
				}
			}
			if winner == nil {
				t.Fatalf("round %d: nobody took the expired lease over: %v", round, errs)
			}
			for i, err := range errs {
				var held *HeldError
				if errors.As(err, &held) && held.Lease.ID != winner.Info().ID {
					t.Errorf("round %d: taker %d told %s holds it, not the winner %s", round, i, held.Lease.Holder, winner.Info().Holder)
				}
			}
			cur, err := Current(ctx, d)
			if err != nil || cur == nil || cur.ID != winner.Info().ID {
				t.Fatalf("round %d: lease in the storage %+v, %v; want the winner's", round, cur, err)
			}
			if err := winner.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A holder whose lease was replaced behind its back learns it from its
// next renewal, and its Release leaves the successor's lease alone.
func TestLeaseLost(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx, clk := fakeClock(t)
		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", DefaultLeaseTTL)
		if err != nil {
			t.Fatal(err)
		}
		other := LeaseInfo{ID: newID(), Holder: "other/2/gc", Reason: "cutover", Started: clk.Now().UTC(), Expires: clk.Now().Add(time.Hour).UTC()}
		putLease(t, d, other)
		waitTimers(t, clk, 1)
		clk.Advance(DefaultLeaseTTL / 3) // the next renewal finds it
		select {
		case <-l.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("the lease was replaced but Lost was not closed")
		}
		if err := l.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "other/2/gc") {
			t.Errorf("Err = %v, want ErrLost naming the new holder", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if cur, err := Current(ctx, d); err != nil || cur == nil || cur.ID != other.ID {
			t.Fatalf("after the old holder's Release: %+v, %v; want the other lease kept", cur, err)
		}
	})
}

// A takeover lock left by a process that crashed while holding it is
// broken once stale, so the lease can still be taken over.
func TestLeaseStaleTakeoverLock(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	old := crashedLease()
	putLease(t, d, old)
	lock, _ := json.Marshal(takeoverLock{Holder: "crashed/3/gc", Created: time.Now().Add(-2 * takeoverStale).UTC()})
	if err := d.PutContent(ctx, takeoverDir+"/"+old.ID+".json", lock); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(ctx, d, "new/2/gc", "garbage collection", time.Minute)
	if err != nil {
		t.Fatalf("Acquire with a stale takeover lock: %v", err)
	}
	l.Release(ctx)

	// A fresh lock is respected: the taker waits, then gives up.
	old = crashedLease()
	putLease(t, d, old)
	lock, _ = json.Marshal(takeoverLock{Holder: "busy/4/gc", Created: time.Now().UTC()})
	if err := d.PutContent(ctx, takeoverDir+"/"+old.ID+".json", lock); err != nil {
		t.Fatal(err)
	}
	saved := contendedWait
	contendedWait = 200 * time.Millisecond
	defer func() { contendedWait = saved }()
	if l, err := Acquire(ctx, d, "new/2/gc", "garbage collection", time.Minute); err == nil {
		l.Release(ctx)
		t.Fatal("Acquire went through a live takeover lock")
	} else if !strings.Contains(err.Error(), "being taken over") {
		t.Errorf("Acquire with a live takeover lock: %v", err)
	}
}

func TestAcquireNeedsExclusiveCreate(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Hiding CreateExclusive behind the plain interface.
	var plain struct{ storage.Driver }
	plain.Driver = d
	if _, err := Acquire(t.Context(), plain, "h/1/gc", "gc", time.Minute); err == nil || !strings.Contains(err.Error(), "exclusively") {
		t.Errorf("Acquire on a driver without CreateExclusive: %v", err)
	}
}
