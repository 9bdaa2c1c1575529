package blobcache

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Stats count what a Guarded cache did. Bypassed counts calls that did
// not ask the cache because it failed shortly before.
type Stats struct {
	Hits, Misses, Errors, Bypassed uint64
}

// RetryAfter is how long a Guarded cache goes straight to the storage
// after a failure, so that a Redis that is down costs one timeout per
// pause, not one per request.
var RetryAfter = 2 * time.Second

// Guarded makes a cache safe to depend on for speed only: a failing
// Get or Content is a miss (the caller goes to the storage), a failing
// Set is dropped; both are logged (the first failure, then at most once
// a minute, and the recovery) and counted. Clear and Flush errors are
// returned: the caller must not delete what it could not invalidate, and
// they are always tried.
type Guarded struct {
	C   Cache
	Log *slog.Logger

	hits, misses, errs, bypassed atomic.Uint64

	mu       sync.Mutex
	failing  bool
	lastWarn time.Time
	retryAt  time.Time // while failing: skip Get, Set and Content until then
}

// skip reports whether to leave the cache alone for now.
func (g *Guarded) skip() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failing && time.Now().Before(g.retryAt) {
		g.bypassed.Add(1)
		return true
	}
	return false
}

// Stats returns the counters so far.
func (g *Guarded) Stats() Stats {
	return Stats{Hits: g.hits.Load(), Misses: g.misses.Load(), Errors: g.errs.Load(), Bypassed: g.bypassed.Load()}
}

func (g *Guarded) observe(op string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		if g.failing {
			g.failing = false
			g.log().Info("blob descriptor cache answers again")
		}
		return
	}
	g.errs.Add(1)
	if !g.failing || time.Since(g.lastWarn) > time.Minute {
		g.log().Warn("blob descriptor cache failing: serving from the storage", "op", op, "err", err, "errors_so_far", g.errs.Load())
		g.lastWarn = time.Now()
	}
	g.failing = true
	g.retryAt = time.Now().Add(RetryAfter)
}

func (g *Guarded) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

func (g *Guarded) Get(ctx context.Context, k Key) (Descriptor, bool, error) {
	if g.skip() {
		g.misses.Add(1)
		return Descriptor{}, false, nil
	}
	d, ok, err := g.C.Get(ctx, k)
	g.observe("get", err)
	if err != nil || !ok {
		g.misses.Add(1)
		return Descriptor{}, false, nil
	}
	g.hits.Add(1)
	return d, true, nil
}

func (g *Guarded) Set(ctx context.Context, k Key, d Descriptor) error {
	if g.skip() {
		return nil
	}
	g.observe("set", g.C.Set(ctx, k, d))
	return nil
}

func (g *Guarded) Clear(ctx context.Context, ks ...Key) error {
	err := g.C.Clear(ctx, ks...)
	g.observe("clear", err)
	return err
}

func (g *Guarded) Content(ctx context.Context, d digest.Digest) ([]byte, bool, error) {
	if g.skip() {
		g.misses.Add(1)
		return nil, false, nil
	}
	b, ok, err := g.C.Content(ctx, d)
	g.observe("content", err)
	if err != nil || !ok {
		g.misses.Add(1)
		return nil, false, nil
	}
	g.hits.Add(1)
	return b, true, nil
}

func (g *Guarded) SetContent(ctx context.Context, d digest.Digest, body []byte) error {
	if g.skip() {
		return nil
	}
	g.observe("set content", g.C.SetContent(ctx, d, body))
	return nil
}

func (g *Guarded) Flush(ctx context.Context) (int, error) {
	n, err := g.C.Flush(ctx)
	g.observe("flush", err)
	return n, err
}

func (g *Guarded) Ping(ctx context.Context) error {
	err := g.C.Ping(ctx)
	g.observe("ping", err)
	return err
}

func (g *Guarded) Close() error { return g.C.Close() }
