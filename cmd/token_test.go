package cmd

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"regctl/pkg/auth"
	"regctl/pkg/certs"
	"regctl/pkg/distconfig"
	"regctl/pkg/token"
)

// controllerFor builds the registry's auth exactly as config.yml, rendered
// by reconfigure in dir, asks for it.
func controllerFor(t *testing.T, dir string) auth.Controller {
	t.Helper()
	cfg, err := distconfig.Load(filepath.Join(dir, "data", "registry", "config.yml"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := auth.FromConfig(cfg.Auth)
	if err != nil || ctl == nil {
		t.Fatalf("auth from config.yml: %v, %v", ctl, err)
	}
	return ctl
}

func authorize(ctl auth.Controller, tok, method, path string) error {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	name := strings.TrimSuffix(strings.TrimPrefix(path, "/v2/"), "/manifests/latest")
	_, err := ctl.Authorize(req, auth.Needs(auth.RouteManifest, name, method, nil))
	return err
}

// A token from `regctl token issue` is accepted by the registry that
// reconfigure set up from the same settings, and grants what it says.
func TestTokenIssue(t *testing.T) {
	dir, settings := prepared(t, "data_dir = \"data\"\n[gitlab_rails]\nregistry_issuer = \"my-issuer\"\n")
	ctl := controllerFor(t, dir)

	r := mustCode(t, 0, "token", "issue", "--settings", settings, "--scope", "repository:group/project:pull,push", "--scope", "repository:group/other:pull")
	tok := r.stdout
	if !strings.HasSuffix(tok, "\n") || strings.Count(tok, "\n") != 1 || strings.Count(tok, ".") != 2 || r.stderr != "" {
		t.Fatalf("want the token alone on one line of stdout, got %s", r)
	}
	tok = strings.TrimSpace(tok)
	if err := authorize(ctl, tok, "PUT", "/v2/group/project/manifests/latest"); err != nil {
		t.Errorf("push to group/project: %v", err)
	}
	if err := authorize(ctl, tok, "GET", "/v2/group/other/manifests/latest"); err != nil {
		t.Errorf("pull from group/other: %v", err)
	}
	err := authorize(ctl, tok, "PUT", "/v2/group/other/manifests/latest")
	if !errors.Is(err, auth.ErrInsufficientScope) {
		t.Errorf("push to group/other: got %v, want insufficient scope", err)
	}

	// -o json: the token and what it says.
	r = mustCode(t, 0, "token", "issue", "--settings", settings, "--scope", "registry:catalog:*", "--subject", "backup", "--ttl", "1h", "-o", "json")
	var out struct {
		Token     string                  `json:"token"`
		ExpiresAt time.Time               `json:"expires_at"`
		Kid       string                  `json:"kid"`
		Access    []token.ResourceActions `json:"access"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r)
	}
	if d := time.Until(out.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Errorf("expires_at %v is not an hour away", out.ExpiresAt)
	}
	if want := []token.ResourceActions{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}; !reflect.DeepEqual(out.Access, want) {
		t.Errorf("access: %+v", out.Access)
	}
	if tc, ok := ctl.(*auth.TokenController); !ok || !reflect.DeepEqual(tc.KeyIDs(), []string{out.Kid}) {
		t.Errorf("kid %q is not the one the registry trusts", out.Kid)
	}
	req := httptest.NewRequest("GET", "/v2/_catalog", nil)
	req.Header.Set("Authorization", "Bearer "+out.Token)
	g, err := ctl.Authorize(req, auth.Needs(auth.RouteCatalog, "", "GET", nil))
	if err != nil || g.Subject != "backup" {
		t.Errorf("catalog token: %+v, %v", g, err)
	}

	// No scope: a login-only token, valid for /v2/ only.
	r = mustCode(t, 0, "token", "issue", "--settings", settings)
	req = httptest.NewRequest("GET", "/v2/", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(r.stdout))
	if _, err := ctl.Authorize(req, auth.Needs(auth.RouteBase, "", "GET", nil)); err != nil {
		t.Errorf("login token: %v", err)
	}
}

func TestTokenIssueErrors(t *testing.T) {
	_, settings := withSecrets(t, "data_dir = \"data\"\n")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--scope", "repository:group/project"}, 2, "--scope: scope \"repository:group/project\": want TYPE:NAME:ACTIONS"},
		{[]string{"--scope", "repository:group/project:pul"}, 2, `unknown action "pul"`},
		{[]string{"--ttl", "0s"}, 2, "--ttl must be positive"},
		{[]string{"--ttl", "soon"}, 2, "invalid argument"},
		{[]string{"extra"}, 2, "unknown command"},
	}
	for _, c := range cases {
		r := mustCode(t, c.code, append([]string{"token", "issue", "--settings", settings}, c.args...)...)
		if !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("%v: want %q on stderr and nothing on stdout, got %s", c.args, c.want, r)
		}
	}

	// A key that does not belong to its certificate: no token is printed.
	dir, mismatched := withSecrets(t, "data_dir = \"data\"\n")
	var sec map[string]map[string]string
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "regctl-secrets.json"))), &sec); err != nil {
		t.Fatal(err)
	}
	_, otherCert, err := certs.GenerateKeyPairBits(2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sec["registry"]["internal_certificate"] = string(otherCert)
	b, _ := json.Marshal(sec)
	writeFile(t, filepath.Join(dir, "regctl-secrets.json"), string(b), 0o600)
	r := mustCode(t, 1, "token", "issue", "--settings", mismatched)
	if r.stdout != "" || !strings.Contains(r.stderr, "registry.internal_key does not belong to registry.internal_certificate") {
		t.Errorf("mismatched pair: %s", r)
	}

	// No secrets yet: say what to run.
	_, fresh := newSettings(t, "data_dir = \"data\"\n")
	r = mustCode(t, 1, "token", "issue", "--settings", fresh, "--scope", "repository:a:pull")
	if !strings.Contains(r.stderr, "no token-signing key") || !strings.Contains(r.stderr, "regctl reconfigure") {
		t.Errorf("no secrets: %s", r)
	}
}
