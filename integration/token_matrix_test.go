package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/certs"
	"regctl/pkg/token"
)

// TestTokenMatrix runs GitLab-format tokens, good and bad, against the
// real regctl serve and checks the exact status, challenge and error code.
func TestTokenMatrix(t *testing.T) {
	dir := t.TempDir()
	keyPEM, certPEM, err := certs.GenerateKeyPairBits(2048, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherKeyPEM, _, err := certs.GenerateKeyPairBits(2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "gitlab-registry.crt")
	if err := os.WriteFile(bundle, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testtools.FreeAddr(t)
	const realm = "https://gitlab.example.com/jwt/auth"
	extra := "auth:\n  token:\n    realm: " + realm + "\n    service: container_registry\n    issuer: omnibus-gitlab-issuer\n    rootcertbundle: " + bundle + "\n"
	startServeT(t, serveConfig(t, addr, extra), addr)

	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := certs.ParsePrivateKeyPEM(otherKeyPEM)
	mint := func(mod func(*token.IssueOptions), signer ...any) string {
		t.Helper()
		opts := token.IssueOptions{Issuer: "omnibus-gitlab-issuer", Subject: "ci", Now: time.Now(),
			Access: []token.ResourceActions{{Type: "repository", Name: "group/app", Actions: []string{"pull"}}}}
		if mod != nil {
			mod(&opts)
		}
		k := key
		if len(signer) > 0 {
			k = otherKey
		}
		iss, err := token.Issue(k, opts)
		if err != nil {
			t.Fatal(err)
		}
		return iss.Token
	}
	valid := mint(nil)
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding
	var claims map[string]any
	payload, _ := b64.DecodeString(parts[1])
	json.Unmarshal(payload, &claims)
	claims["access"] = []map[string]any{{"type": "repository", "name": "group/app", "actions": []string{"pull", "push"}}}
	tampered, _ := json.Marshal(claims)
	hsHeader := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	mac := hmac.New(sha256.New, certPEM)
	mac.Write([]byte(hsHeader + "." + parts[1]))
	noneHeader := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))

	pullPush := func(o *token.IssueOptions) {
		o.Access = []token.ResourceActions{{Type: "repository", Name: "group/app", Actions: []string{"pull", "push"}}}
	}
	tags, uploads, catalog := "/v2/group/app/tags/list", "/v2/group/app/blobs/uploads/", "/v2/_catalog"
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		errorParam, code          string // WWW-Authenticate error=, body code
	}{
		{"valid", http.MethodGet, tags, valid, http.StatusNotFound, "", "NAME_UNKNOWN"},
		{"valid push", http.MethodPost, uploads, mint(pullPush), http.StatusAccepted, "", ""},
		{"no token", http.MethodGet, tags, "", http.StatusUnauthorized, "", "UNAUTHORIZED"},
		{"expired", http.MethodGet, tags, mint(func(o *token.IssueOptions) { o.Now = time.Now().Add(-10 * time.Minute) }), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"nbf in the future", http.MethodGet, tags, mint(func(o *token.IssueOptions) { o.Now = time.Now().Add(10 * time.Minute) }), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"wrong issuer", http.MethodGet, tags, mint(func(o *token.IssueOptions) { o.Issuer = "someone-else" }), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"wrong audience", http.MethodGet, tags, mint(func(o *token.IssueOptions) { o.Audience = "another_service" }), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"signed by another key", http.MethodGet, tags, mint(nil, "other"), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"alg none", http.MethodGet, tags, noneHeader + "." + parts[1] + ".", http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"HS256 keyed with the certificate", http.MethodGet, tags, hsHeader + "." + parts[1] + "." + b64.EncodeToString(mac.Sum(nil)), http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"tampered payload", http.MethodPost, uploads, parts[0] + "." + b64.EncodeToString(tampered) + "." + parts[2], http.StatusUnauthorized, "invalid_token", "UNAUTHORIZED"},
		{"missing scope", http.MethodPost, uploads, valid, http.StatusUnauthorized, "insufficient_scope", "DENIED"},
		{"another repository", http.MethodGet, "/v2/group/other/tags/list", valid, http.StatusUnauthorized, "insufficient_scope", "DENIED"},
		{"catalog without scope", http.MethodGet, catalog, valid, http.StatusUnauthorized, "insufficient_scope", "DENIED"},
		{"catalog", http.MethodGet, catalog, mint(func(o *token.IssueOptions) {
			o.Access = []token.ResourceActions{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
		}), http.StatusOK, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.token != "" {
				h["Authorization"] = "Bearer " + tc.token
			}
			resp, body := do(t, tc.method, addr, tc.path, nil, h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" && !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
				t.Errorf("body %s, want code %s", body, tc.code)
			}
			if tc.status != http.StatusUnauthorized {
				return
			}
			ch := resp.Header.Get("WWW-Authenticate")
			for _, want := range []string{`Bearer realm="` + realm + `"`, `service="container_registry"`} {
				if !strings.Contains(ch, want) {
					t.Errorf("WWW-Authenticate %q lacks %q", ch, want)
				}
			}
			if tc.path != catalog && !strings.Contains(ch, `scope="repository:`) {
				t.Errorf("WWW-Authenticate %q names no scope", ch)
			}
			if tc.errorParam != "" && !strings.Contains(ch, `error="`+tc.errorParam+`"`) {
				t.Errorf("WWW-Authenticate %q, want error=%q", ch, tc.errorParam)
			}
		})
	}
}
