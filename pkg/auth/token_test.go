package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"regctl/pkg/certs"
	"regctl/pkg/token"
)

// challenge is the expected Bearer WWW-Authenticate value.
func challenge(scope, errParam string) string {
	s := `Bearer realm="` + testRealm + `",service="` + testService + `"`
	if scope != "" {
		s += `,scope="` + scope + `"`
	}
	if errParam != "" {
		s += `,error="` + errParam + `"`
	}
	return s
}

// hs256 signs header.claims with HMAC-SHA256 keyed by secret: the
// algorithm-confusion attack, with the public key (which anyone may read)
// as the secret.
func hs256(t *testing.T, kid string, claims jwt.MapClaims, secret []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + enc(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamper replaces a signed token's payload, keeping header and signature.
func tamper(t *testing.T, tok string, claims jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestTokenMatrix(t *testing.T) {
	p := getPKI(t)
	ctl := newTokenController(t, nil)
	srv := serve(t, ctl)

	gitlabKid, _ := certs.LibtrustKeyID(p.gitlab.cert.PublicKey)
	thumb, _ := certs.JWKThumbprint(p.gitlab.cert.PublicKey)
	x5c := func(certs ...*x509.Certificate) []string {
		var out []string
		for _, c := range certs {
			out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
		}
		return out
	}
	// Minted by pkg/token, exactly as GitLab: the main valid token.
	minted, err := token.Issue(p.gitlab.key, token.IssueOptions{
		Issuer: testIssuer, Audience: testService, Subject: "alice", Now: testNow,
		Access: []token.ResourceActions{{Type: "repository", Name: "group/app", Actions: []string{"pull"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	valid := minted.Token
	pubDER, _ := x509.MarshalPKIXPublicKey(p.gitlab.cert.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.gitlab.cert.Raw})
	rs := jwt.SigningMethodRS256
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, baseClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	pushPull := with(map[string]any{"access": access("repository:group/app:pull,push")})
	// Uploads with a mount: the source repository in the query.
	mount := "/v2/group/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=other/src"

	const (
		pull       = "repository:group/app:pull"
		pullPush   = "repository:group/app:pull,push"
		invalid    = "invalid_token"
		scopeShort = "insufficient_scope"
	)
	cases := []struct {
		name   string
		method string
		path   string
		tok    string // bearer token; "" sends no Authorization
		hdr    http.Header
		status int
		www    string
		code   string
		cause  error
	}{
		{"valid (minted by pkg/token)", "GET", "/v2/group/app/manifests/latest", valid, nil, 200, "", "subject=alice", nil},
		{"valid HEAD", "HEAD", "/v2/group/app/blobs/sha256:" + strings.Repeat("b", 64), valid, nil, 200, "", "", nil},
		{"valid tags", "GET", "/v2/group/app/tags/list", valid, nil, 200, "", "subject=alice", nil},
		{"no token", "GET", "/v2/group/app/manifests/latest", "", nil, 401, challenge(pull, ""), CodeUnauthorized, ErrNoCredentials},
		{"no token HEAD", "HEAD", "/v2/group/app/manifests/latest", "", nil, 401, challenge(pull, ""), "", ErrNoCredentials},
		{"basic credentials to a token registry", "GET", "/v2/group/app/manifests/latest", "", http.Header{"Authorization": {"Basic YWxpY2U6cHc="}}, 401, challenge(pull, ""), CodeUnauthorized, ErrNoCredentials},
		{"base route, no token", "GET", "/v2/", "", nil, 401, challenge("", ""), CodeUnauthorized, ErrNoCredentials},
		{"base route, token with no access", "GET", "/v2/", sign(t, rs, p.gitlab, with(map[string]any{"access": []any{}}), nil), nil, 200, "", "subject=alice", nil},
		{"base route, token with no access claim", "GET", "/v2/", sign(t, rs, p.gitlab, with(map[string]any{"access": nil}), nil), nil, 200, "", "subject=alice", nil},
		{"base route, invalid token", "GET", "/v2/", sign(t, rs, p.other, baseClaims(), nil), nil, 401, challenge("", invalid), CodeUnauthorized, ErrInvalidToken},
		{"malformed token", "GET", "/v2/group/app/manifests/latest", "not.a.jwt", nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"expired beyond leeway", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"exp": testNow.Add(-61 * time.Second).Unix()}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenExpired},
		{"expired within leeway", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"exp": testNow.Add(-59 * time.Second).Unix()}), nil), nil, 200, "", "subject=alice", nil},
		{"no exp", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"exp": nil}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenRequiredClaimMissing},
		{"nbf in the future", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"nbf": testNow.Add(2 * time.Minute).Unix()}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenNotValidYet},
		{"nbf within leeway", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"nbf": testNow.Add(59 * time.Second).Unix()}), nil), nil, 200, "", "subject=alice", nil},
		{"no iat, no nbf", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"iat": nil, "nbf": nil}), nil), nil, 200, "", "subject=alice", nil},
		{"wrong issuer", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"iss": "someone-else"}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenInvalidIssuer},
		{"no issuer", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"iss": nil}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"aud": "other_service"}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenInvalidAudience},
		{"audience array with service", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"aud": []string{"x", testService}}), nil), nil, 200, "", "subject=alice", nil},
		{"audience array without service", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"aud": []string{"x", "y"}}), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenInvalidAudience},
		{"signed by another key (its own kid)", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.other, baseClaims(), nil), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"signed by another key (trusted kid)", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.other, baseClaims(), map[string]any{"kid": gitlabKid}), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenSignatureInvalid},
		{"no kid, no x5c", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, baseClaims(), map[string]any{"kid": nil}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"alg none", "GET", "/v2/group/app/manifests/latest", none, nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"HS256 keyed with the public key PEM", "GET", "/v2/group/app/manifests/latest", hs256(t, gitlabKid, baseClaims(), pubPEM), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"HS256 keyed with the certificate PEM", "GET", "/v2/group/app/manifests/latest", hs256(t, gitlabKid, baseClaims(), certPEM), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"HS256 keyed with the public key DER", "GET", "/v2/group/app/manifests/latest", hs256(t, gitlabKid, baseClaims(), pubDER), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"tampered payload", "PUT", "/v2/group/app/manifests/latest", tamper(t, valid, pushPull), nil, 401, challenge(pullPush, invalid), CodeUnauthorized, jwt.ErrTokenSignatureInvalid},
		{"crit header", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, baseClaims(), map[string]any{"crit": []string{"exp"}}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"missing scope (pull token, push)", "PUT", "/v2/group/app/manifests/latest", valid, nil, 401, challenge(pullPush, scopeShort), CodeDenied, ErrInsufficientScope},
		{"missing scope (upload)", "POST", "/v2/group/app/blobs/uploads/", valid, nil, 401, challenge(pullPush, scopeShort), CodeDenied, ErrInsufficientScope},
		{"push token pushes", "PATCH", "/v2/group/app/blobs/uploads/some-uuid", sign(t, rs, p.gitlab, pushPull, nil), nil, 200, "", "subject=alice", nil},
		{"push-only token cannot push (needs pull too)", "PUT", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"access": access("repository:group/app:push")}), nil), nil, 401, challenge(pullPush, scopeShort), CodeDenied, ErrInsufficientScope},
		{"delete without delete", "DELETE", "/v2/group/app/manifests/sha256:" + strings.Repeat("c", 64), sign(t, rs, p.gitlab, pushPull, nil), nil, 401, challenge("repository:group/app:delete", scopeShort), CodeDenied, ErrInsufficientScope},
		{"delete with *", "DELETE", "/v2/group/app/manifests/sha256:" + strings.Repeat("c", 64), sign(t, rs, p.gitlab, with(map[string]any{"access": access("repository:group/app:*")}), nil), nil, 200, "", "subject=alice", nil},
		{"scope for another repository", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, with(map[string]any{"access": access("repository:group/other:pull")}), nil), nil, 401, challenge(pull, scopeShort), CodeDenied, ErrInsufficientScope},
		{"scope for a parent path", "GET", "/v2/group/app/sub/manifests/latest", valid, nil, 401, challenge("repository:group/app/sub:pull", scopeShort), CodeDenied, ErrInsufficientScope},
		{"mount without pull on the source", "POST", mount, sign(t, rs, p.gitlab, pushPull, nil), nil, 401, challenge(pullPush+" repository:other/src:pull", scopeShort), CodeDenied, ErrInsufficientScope},
		{"mount with pull on the source", "POST", mount, sign(t, rs, p.gitlab, with(map[string]any{"access": access("repository:group/app:pull,push", "repository:other/src:pull")}), nil), nil, 200, "", "subject=alice", nil},
		{"catalog without registry:catalog:*", "GET", "/v2/_catalog", valid, nil, 401, challenge("registry:catalog:*", scopeShort), CodeDenied, ErrInsufficientScope},
		{"catalog, no token", "GET", "/v2/_catalog", "", nil, 401, challenge("registry:catalog:*", ""), CodeUnauthorized, ErrNoCredentials},
		{"catalog with registry:catalog:*", "GET", "/v2/_catalog", sign(t, rs, p.gitlab, with(map[string]any{"access": access("registry:catalog:*")}), nil), nil, 200, "", "subject=alice", nil},
		{"x5c names the bundle certificate", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.gitlab.cert)}), nil, 200, "", "subject=alice", nil},
		{"x5c chains to a bundle CA", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.leaf, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.leaf.cert, p.inter.cert)}), nil, 200, "", "subject=alice", nil},
		{"x5c chain without its intermediate", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.leaf, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.leaf.cert)}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"x5c of an untrusted certificate", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.other, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.other.cert)}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"x5c under an untrusted CA", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.rogue, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.rogue.cert)}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"x5c wins over a trusted kid", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.other, baseClaims(), map[string]any{"kid": gitlabKid, "x5c": x5c(p.other.cert)}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"x5c trusted but signed by another key", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.other, baseClaims(), map[string]any{"kid": nil, "x5c": x5c(p.gitlab.cert)}), nil, 401, challenge(pull, invalid), CodeUnauthorized, jwt.ErrTokenSignatureInvalid},
		{"x5c not base64", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, baseClaims(), map[string]any{"kid": nil, "x5c": []string{"%%%"}}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
		{"RFC 7638 thumbprint kid", "GET", "/v2/group/app/manifests/latest", sign(t, rs, p.gitlab, baseClaims(), map[string]any{"kid": thumb}), nil, 200, "", "subject=alice", nil},
		{"PS256", "GET", "/v2/group/app/manifests/latest", sign(t, jwt.SigningMethodPS256, p.gitlab, baseClaims(), nil), nil, 200, "", "subject=alice", nil},
		{"RS512", "GET", "/v2/group/app/manifests/latest", sign(t, jwt.SigningMethodRS512, p.gitlab, baseClaims(), nil), nil, 200, "", "subject=alice", nil},
		{"ES256 with an ECDSA bundle certificate", "GET", "/v2/group/app/manifests/latest", sign(t, jwt.SigningMethodES256, p.ec, baseClaims(), nil), nil, 200, "", "subject=alice", nil},
		{"ES384 claimed for a P-256 key", "GET", "/v2/group/app/manifests/latest", sign(t, jwt.SigningMethodES256, p.ec, baseClaims(), map[string]any{"alg": "ES384"}), nil, 401, challenge(pull, invalid), CodeUnauthorized, ErrInvalidToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := c.hdr
			if c.tok != "" {
				hdr = bearerHeader(c.tok)
			}
			got := do(t, srv, c.method, c.path, hdr)
			if got.status != c.status || got.www != c.www || got.code != c.code {
				t.Errorf("got %d %q %q\nwant %d %q %q", got.status, got.www, got.code, c.status, c.www, c.code)
			}
			if c.status == 401 && c.method != "HEAD" {
				kind, name := routeOf(strings.SplitN(c.path, "?", 2)[0])
				req := httptest.NewRequest(c.method, c.path, nil)
				want := Needs(kind, name, c.method, req.URL.Query())
				if !reflect.DeepEqual(got.detail, want) {
					t.Errorf("detail: got %v, want the needed access %v", got.detail, want)
				}
			}

			// The same request straight to Authorize: the cause.
			req := httptest.NewRequest(c.method, c.path, nil)
			for k, vs := range hdr {
				req.Header[k] = vs
			}
			kind, name := routeOf(req.URL.Path)
			g, err := ctl.Authorize(req, Needs(kind, name, c.method, req.URL.Query()))
			if c.cause == nil {
				if err != nil || g == nil {
					t.Fatalf("Authorize: %v", err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || !errors.Is(err, c.cause) {
				t.Errorf("Authorize: got %v, want an *Error caused by %v", err, c.cause)
			}
			if ae != nil && strings.ContainsAny(ae.Error(), "\n") {
				t.Errorf("error has a newline: %q", ae.Error())
			}
		})
	}
}

// The reason reaches the client's message, so whoever debugs a login sees
// why without the registry's log.
func TestTokenReasons(t *testing.T) {
	p := getPKI(t)
	ctl := newTokenController(t, nil)
	rs := jwt.SigningMethodRS256
	gitlabKid, _ := certs.LibtrustKeyID(p.gitlab.cert.PublicKey)
	otherKid, _ := certs.LibtrustKeyID(p.other.cert.PublicKey)
	cases := []struct{ tok, want string }{
		{sign(t, rs, p.gitlab, with(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil), "invalid token: token is expired"},
		{sign(t, rs, p.gitlab, with(map[string]any{"iss": "x"}), nil), `issuer is not "omnibus-gitlab-issuer"`},
		{sign(t, rs, p.gitlab, with(map[string]any{"aud": "x"}), nil), `audience does not include "container_registry"`},
		{sign(t, rs, p.other, baseClaims(), nil), `untrusted key (kid "` + otherKid + `" is not in the rootcertbundle)`},
		{sign(t, rs, p.other, baseClaims(), map[string]any{"kid": gitlabKid}), "signature does not verify"},
		{hs256(t, gitlabKid, baseClaims(), []byte("k")), `algorithm "HS256" is not accepted`},
		{"e30.e30.", `algorithm "" is not accepted`},
		{"abc", "malformed token"},
		{sign(t, rs, p.gitlab, with(map[string]any{"exp": nil}), nil), "token has no exp claim"},
		{sign(t, rs, p.gitlab, with(map[string]any{"iss": nil}), nil), "token has no iss claim"},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/v2/group/app/manifests/latest", nil)
		req.Header.Set("Authorization", "Bearer "+c.tok)
		_, err := ctl.Authorize(req, Needs(RouteManifest, "group/app", "GET", nil))
		var ae *Error
		if !errors.As(err, &ae) || !strings.Contains(ae.Message, c.want) {
			t.Errorf("got %v, want a message containing %q", err, c.want)
		}
	}
}

func TestTokenAutoRedirect(t *testing.T) {
	ctl := newTokenController(t, func(o *TokenOptions) { o.AutoRedirect = true })
	req := httptest.NewRequest("GET", "http://registry.example.com:5050/v2/", nil)
	_, err := ctl.Authorize(req, nil)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatal(err)
	}
	if got, want := ae.Challenge.String(), `Bearer realm="https://registry.example.com:5050/auth/token",service="container_registry"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	req.Header.Set("X-Forwarded-Proto", "http")
	_, err = ctl.Authorize(req, nil)
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.Challenge.String(), `Bearer realm="http://registry.example.com:5050/auth/token"`) {
		t.Errorf("X-Forwarded-Proto: got %v", err)
	}
}

func TestTokenGrant(t *testing.T) {
	p := getPKI(t)
	ctl := newTokenController(t, nil)
	if got, want := ctl.KeyIDs(), func() []string {
		var out []string
		for _, c := range []*x509.Certificate{p.gitlab.cert, p.ec.cert, p.root.cert} {
			k, _ := certs.LibtrustKeyID(c.PublicKey)
			out = append(out, k)
		}
		return out
	}(); !reflect.DeepEqual(got, want) {
		t.Errorf("KeyIDs: got %v, want %v", got, want)
	}
	req := httptest.NewRequest("GET", "/v2/", nil)
	req.Header.Set("Authorization", "bearer "+sign(t, jwt.SigningMethodRS256, p.gitlab, baseClaims(), nil))
	g, err := ctl.Authorize(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []token.ResourceActions{{Type: "repository", Name: "group/app", Actions: []string{"pull"}}}
	if g.Subject != "alice" || g.All || !reflect.DeepEqual(g.Access, want) {
		t.Errorf("grant: %+v", g)
	}
}

// The daemon stops with one line naming the key when the bundle is unusable.
func TestRootCertBundleErrors(t *testing.T) {
	p := getPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyPEM, _, err := certs.GenerateKeyPairBits(2048, testNow)
	if err != nil {
		t.Fatal(err)
	}
	unreadable := write("unreadable.crt", "x")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"unset", "", "auth.token.rootcertbundle: must be set"},
		{"missing", filepath.Join(dir, "nope.crt"), "auth.token.rootcertbundle: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{"a folder", dir, "auth.token.rootcertbundle: read " + dir + ": is a directory"},
		{"empty", write("empty.crt", "\n  \n"), "auth.token.rootcertbundle: " + filepath.Join(dir, "empty.crt") + " is empty"},
		{"no PEM", write("text.crt", "hello\n"), `holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`},
		{"a private key", write("key.crt", string(keyPEM)), `holds no certificate, only "RSA PRIVATE KEY" (a private key: are the certificate and key paths swapped?)`},
		{"a broken certificate", write("broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "broken.crt: PEM block 1: x509:"},
	}
	if os.Getuid() != 0 { // root reads any file
		cases = append(cases, struct{ name, path, want string }{"unreadable", unreadable, "permission denied"})
	}
	for _, c := range cases {
		_, err := NewToken(TokenOptions{Realm: testRealm, Service: testService, Issuer: testIssuer, RootCertBundle: c.path})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "auth.token.rootcertbundle: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line with %q", c.name, err, c.want)
		}
		// FromConfig reports the same.
		_, err2 := FromConfig(map[string]any{"token": map[string]any{
			"realm": testRealm, "service": testService, "issuer": testIssuer, "rootcertbundle": c.path,
		}})
		if err == nil || err2 == nil || err.Error() != err2.Error() {
			t.Errorf("%s: FromConfig: got %v, want %v", c.name, err2, err)
		}
	}
	for _, key := range []string{"realm", "service", "issuer"} {
		opts := map[string]any{"realm": testRealm, "service": testService, "issuer": testIssuer, "rootcertbundle": p.bundle}
		delete(opts, key)
		if _, err := FromConfig(map[string]any{"token": opts}); err == nil || err.Error() != "auth.token."+key+": must be set" {
			t.Errorf("no %s: got %v", key, err)
		}
	}
}
