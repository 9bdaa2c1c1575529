package auth

import (
	"sync"
	"time"
)

// verifiedCacheTTL bounds how long a verified token is trusted without
// checking its signature again, and verifiedCacheSize how many are kept.
// A client sends the same token with every request of a session, and an
// RSA-4096 verification costs more than serving a manifest.
const (
	verifiedCacheTTL  = time.Minute
	verifiedCacheSize = 4096
)

// verifiedCache remembers tokens whose signature and claims verified, by
// their exact text, until the sooner of their expiry and verifiedCacheTTL.
// A token that verified once verifies again until then: its signature
// cannot change, and its time claims are judged by the entry's deadline.
// A reload builds a new controller, so a rotated key empties it.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[string]verifiedEntry
}

type verifiedEntry struct {
	claims *tokenClaims
	until  time.Time
}

func (c *verifiedCache) get(raw string, now time.Time) (*tokenClaims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[raw]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.entries, raw)
		return nil, false
	}
	return e.claims, true
}

func (c *verifiedCache) put(raw string, claims *tokenClaims, now time.Time) {
	until := now.Add(verifiedCacheTTL)
	if claims.ExpiresAt == nil {
		return
	}
	if exp := claims.ExpiresAt.Time; exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= verifiedCacheSize {
		c.entries = map[string]verifiedEntry{} // rare: start over rather than track age
	}
	c.entries[raw] = verifiedEntry{claims: claims, until: until}
}
