package auth

import (
	"maps"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A token verified moments ago is not verified again, for at most
// verifiedCacheTTL and never past its expiry.
func TestVerifiedTokenCache(t *testing.T) {
	now := testNow
	ctl := newTokenController(t, func(o *TokenOptions) { o.Now = func() time.Time { return now } })
	tok := sign(t, jwt.SigningMethodRS256, getPKI(t).gitlab, baseClaims(), nil)
	if _, err := ctl.verify(tok); err != nil {
		t.Fatal(err)
	}
	// Without its keys the controller can verify nothing: only the
	// cache answers now.
	keys := maps.Clone(ctl.keys)
	clear(ctl.keys)
	now = now.Add(verifiedCacheTTL - time.Second)
	if c, err := ctl.verify(tok); err != nil || c.Subject != "alice" {
		t.Fatalf("cached token: %v, %v", c, err)
	}
	if _, err := ctl.verify(tok + "x"); err == nil {
		t.Fatal("another token text verified from the cache")
	}
	now = now.Add(2 * time.Second)
	if _, err := ctl.verify(tok); err == nil {
		t.Fatal("verified from the cache after its TTL")
	}
	maps.Copy(ctl.keys, keys)

	// A token close to its expiry is cached only until then.
	now = testNow.Add(5*time.Minute - 10*time.Second)
	if _, err := ctl.verify(tok); err != nil {
		t.Fatal(err)
	}
	clear(ctl.keys)
	now = testNow.Add(5 * time.Minute)
	if _, err := ctl.verify(tok); err == nil {
		t.Fatal("verified from the cache at its expiry")
	}
}
