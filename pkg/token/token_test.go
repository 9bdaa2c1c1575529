package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/pkg/certs"
)

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// split decodes a compact JWS into its header, its claims as raw JSON
// objects, the signing input and the signature.
func split(t *testing.T, tok string) (hdr, claims map[string]json.RawMessage, input string, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %q", len(parts), tok)
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("segment %q is not base64url without padding: %v", s, err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	dec(parts[0], &hdr)
	dec(parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return hdr, claims, parts[0] + "." + parts[1], sig
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a JSON string: %v", raw, err)
	}
	return s
}

func num(t *testing.T, raw json.RawMessage) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("%s is not a JSON integer: %v", raw, err)
	}
	return n
}

// GitLab's format, field by field.
func TestIssueAsGitLab(t *testing.T) {
	key := rsaKey()
	now := time.Date(2031, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	access := []ResourceActions{
		{Type: "repository", Name: "group/project", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "group/other", Actions: nil},
	}
	iss, err := Issue(key, IssueOptions{Issuer: "omnibus-gitlab-issuer", Subject: "root", Access: access, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hdr, claims, input, sig := split(t, iss.Token)

	kid, _ := certs.LibtrustKeyID(key.Public())
	if got := keysOf(hdr); !reflect.DeepEqual(got, []string{"alg", "kid", "typ"}) {
		t.Errorf("header keys: got %v, want alg, kid, typ (no x5c)", got)
	}
	if str(t, hdr["alg"]) != "RS256" || str(t, hdr["typ"]) != "JWT" || str(t, hdr["kid"]) != kid {
		t.Errorf("header: %s %s %s, want RS256 JWT %s", hdr["alg"], hdr["typ"], hdr["kid"], kid)
	}
	if iss.KeyID != kid || iss.Algorithm != "RS256" {
		t.Errorf("Issued: kid %q alg %q", iss.KeyID, iss.Algorithm)
	}
	if got := keysOf(claims); !reflect.DeepEqual(got, []string{"access", "aud", "exp", "iat", "iss", "jti", "nbf", "sub"}) {
		t.Errorf("claims: got %v", got)
	}
	iat := now.Truncate(time.Second).Unix()
	checks := []struct {
		name      string
		got, want any
	}{
		{"iss", str(t, claims["iss"]), "omnibus-gitlab-issuer"},
		{"aud is a string", str(t, claims["aud"]), Service},
		{"sub", str(t, claims["sub"]), "root"},
		{"iat", num(t, claims["iat"]), iat},
		{"nbf = iat - 5s", num(t, claims["nbf"]), iat - 5},
		{"exp = iat + 5m", num(t, claims["exp"]), iat + 300},
		{"Issued.ExpiresAt", iss.ExpiresAt.Unix(), iat + 300},
		{"access", string(claims["access"]), `[{"type":"repository","name":"group/project","actions":["pull","push"]},{"type":"repository","name":"group/other","actions":[]}]`},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if jti := str(t, claims["jti"]); !uuid.MatchString(jti) || jti != iss.ID {
		t.Errorf("jti %q: want a random UUID v4 equal to Issued.ID %q", jti, iss.ID)
	}
	sum := sha256.Sum256([]byte(input))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("RS256 signature: %v", err)
	}

	again, err := Issue(key, IssueOptions{Issuer: "x", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == iss.ID {
		t.Error("jti repeats between tokens")
	}
	_, claims, _, _ = split(t, again.Token)
	if string(claims["access"]) != "[]" {
		t.Errorf("no access: got %s, want [] (as GitLab's login tokens)", claims["access"])
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(m))
}

func TestIssueTTL(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	iss, err := Issue(rsaKey(), IssueOptions{Issuer: "i", TTL: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if iss.IssuedAt.Before(before) || iss.IssuedAt.After(after) {
		t.Errorf("zero Now: issued at %v, not between %v and %v", iss.IssuedAt, before, after)
	}
	if d := iss.ExpiresAt.Sub(iss.IssuedAt); d != 90*time.Second {
		t.Errorf("TTL: got %v", d)
	}
}

func TestIssueECDSA(t *testing.T) {
	for _, c := range []struct {
		curve elliptic.Curve
		alg   string
		size  int
	}{{elliptic.P256(), "ES256", 32}, {elliptic.P384(), "ES384", 48}, {elliptic.P521(), "ES512", 66}} {
		key, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		iss, err := Issue(key, IssueOptions{Issuer: "i"})
		if err != nil {
			t.Fatal(err)
		}
		hdr, _, input, sig := split(t, iss.Token)
		if str(t, hdr["alg"]) != c.alg {
			t.Errorf("%s: alg %s", c.curve.Params().Name, hdr["alg"])
		}
		if len(sig) != 2*c.size {
			t.Fatalf("%s: signature is %d bytes, want R||S of %d", c.alg, len(sig), 2*c.size)
		}
		var digest []byte
		switch c.alg {
		case "ES256":
			s := sha256.Sum256([]byte(input))
			digest = s[:]
		case "ES384":
			h := crypto.SHA384.New()
			h.Write([]byte(input))
			digest = h.Sum(nil)
		default:
			h := crypto.SHA512.New()
			h.Write([]byte(input))
			digest = h.Sum(nil)
		}
		r, s := new(big.Int).SetBytes(sig[:c.size]), new(big.Int).SetBytes(sig[c.size:])
		if !ecdsa.Verify(&key.PublicKey, digest, r, s) {
			t.Errorf("%s signature does not verify", c.alg)
		}
	}
}

func TestIssueErrors(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name string
		key  crypto.Signer
		opts IssueOptions
		want string
	}{
		{"no key", nil, IssueOptions{Issuer: "i"}, "no signing key"},
		{"no issuer", rsaKey(), IssueOptions{}, "registry_issuer"},
		{"negative ttl", rsaKey(), IssueOptions{Issuer: "i", TTL: -time.Second}, "negative"},
		{"ed25519", ed, IssueOptions{Issuer: "i"}, "Ed25519 keys cannot sign"},
	}
	for _, c := range cases {
		_, err := Issue(c.key, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	good := []struct {
		in   string
		want ResourceActions
	}{
		{"repository:group/project:pull,push", ResourceActions{"repository", "group/project", []string{"pull", "push"}}},
		{"repository:a:pull,pull,*", ResourceActions{"repository", "a", []string{"pull", "*"}}},
		{"repository:g/sub-group/my__app.v2:delete", ResourceActions{"repository", "g/sub-group/my__app.v2", []string{"delete"}}},
		{"registry:catalog:*", ResourceActions{"registry", "catalog", []string{"*"}}},
	}
	for _, c := range good {
		got, err := ParseScope(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseScope(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if err == nil && c.in != "repository:a:pull,pull,*" && got.String() != c.in {
			t.Errorf("String() = %q, want %q", got.String(), c.in)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want TYPE:NAME:ACTIONS"},
		{"repository", "want TYPE:NAME:ACTIONS"},
		{"repository:group/project", "want TYPE:NAME:ACTIONS"},
		{"repository::pull", "resource name is empty"},
		{"repository:group/project:", "no actions"},
		{"repository:group/project:pull,,push", "empty action"},
		{":group/project:pull", "resource type is empty"},
		{"repo:group/project:pull", `unknown resource type "repo"`},
		{"repository(plugin):group/project:pull", "unknown resource type"},
		{"repository:Group/Project:pull", "not a valid repository name"},
		{"repository:group//project:pull", "not a valid repository name"},
		{"repository:registry.example.com:5000/group:pull", "not a valid repository name"},
		{"repository:group/project:pul", `unknown action "pul"`},
		{"registry:catalog:pull", "registry:catalog:*"},
		{"registry:other:*", "registry:catalog:*"},
	}
	for _, c := range bad {
		_, err := ParseScope(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseScope(%q): got %v, want error containing %q", c.in, err, c.want)
		}
	}
	if long := strings.Repeat("a", 256); validRepositoryName(long) {
		t.Error("a 256-character name is accepted")
	}
}
