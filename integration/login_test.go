package integration

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"regctl/internal/testtools"
	"regctl/pkg/certs"
	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
	"regctl/pkg/token"
)

// testRealm is GitLab's /jwt/auth, cut down: it checks Basic credentials
// and grants what each user may have of the scopes asked for, in tokens
// minted as GitLab mints them (RS256, libtrust kid, no x5c).
type testRealm struct {
	*httptest.Server
	mu       sync.Mutex
	key      crypto.Signer
	issuer   string
	requests []realmRequest
}

type realmRequest struct {
	User    string // "" for anonymous
	Service string
	Scopes  []string
	Token   string
}

// realmUsers are the test's users: password and the actions they may
// have on any repository.
var realmUsers = map[string]struct {
	password string
	actions  []string
}{
	"reader": {"reader-pass", []string{"pull"}},
	"writer": {"writer-pass", []string{"pull", "push"}},
	// admin may also delete and list the catalog, as a GitLab admin's
	// token for registry-cleanup.
	"admin": {"admin-pass", []string{"pull", "push", "delete", "*"}},
	// auditor may list the catalog and pull, but not delete.
	"auditor": {"auditor-pass", []string{"pull", "*"}},
}

func newTestRealm(t *testing.T) *testRealm {
	r := &testRealm{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// use sets the key and issuer, known only once reconfigure has run.
func (r *testRealm) use(key crypto.Signer, issuer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.key, r.issuer = key, issuer
}

func (r *testRealm) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/jwt/auth" || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	var allowed []string
	user, pass, hasBasic := req.BasicAuth()
	if hasBasic {
		u, ok := realmUsers[user]
		if !ok || u.password != pass {
			http.Error(w, `{"errors":["HTTP Basic: Access denied"]}`, http.StatusUnauthorized)
			return
		}
		allowed = u.actions
	} else {
		user = "" // anonymous: a token that grants nothing, as for a private project
	}
	q := req.URL.Query()
	rec := realmRequest{User: user, Service: q.Get("service")}
	var access []token.ResourceActions
	for _, param := range q["scope"] {
		for _, s := range strings.Fields(param) {
			rec.Scopes = append(rec.Scopes, s)
			ra, err := token.ParseScope(s)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var granted []string
			for _, a := range ra.Actions {
				if slices.Contains(allowed, a) {
					granted = append(granted, a)
				}
			}
			ra.Actions = granted
			access = append(access, ra)
		}
	}
	r.mu.Lock()
	key, issuer := r.key, r.issuer
	r.mu.Unlock()
	issued, err := token.Issue(key, token.IssueOptions{Issuer: issuer, Audience: rec.Service, Subject: user, Access: access})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rec.Token = issued.Token
	r.mu.Lock()
	r.requests = append(r.requests, rec)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": issued.Token})
}

func (r *testRealm) seen() []realmRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// TestLoginFlowWithGitLabTokens is `docker login` and push/pull as GitLab
// users see it: go-containerregistry meets the registry's 401 challenge,
// fetches a token from the realm it names with Basic credentials, and
// retries with it. The realm signs as GitLab does, with the internal key
// reconfigure generated, so this proves GitLab-format tokens (libtrust
// kid, no x5c) work end to end through a real client.
func TestLoginFlowWithGitLabTokens(t *testing.T) {
	realm := newTestRealm(t)
	site := startRealmSite(t, realm, "")
	realmURL, addr, key := site.realmURL, site.addr, site.key

	// Anonymous: 401 with a challenge naming the test realm.
	resp, _ := do(t, http.MethodGet, addr, "/v2/group/app/manifests/v1", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET manifest: %d, want 401", resp.StatusCode)
	}
	ch := resp.Header.Get("WWW-Authenticate")
	for _, want := range []string{`Bearer realm="` + realmURL + `/jwt/auth"`, `service="container_registry"`, `scope="repository:group/app:pull"`} {
		if !strings.Contains(ch, want) {
			t.Errorf("WWW-Authenticate %q lacks %s", ch, want)
		}
	}

	writer := remote.WithAuth(&authn.Basic{Username: "writer", Password: "writer-pass"})
	reader := remote.WithAuth(&authn.Basic{Username: "reader", Password: "reader-pass"})

	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ref := mustRef(t, addr+"/group/app:v1")
	if err := remote.Write(ref, img, writer); err != nil {
		t.Fatalf("push as writer: %v", err)
	}
	if !realmGranted(realm.seen(), "writer", "push") {
		t.Errorf("the realm was never asked for push by writer: %+v", realm.seen())
	}
	tok := lastToken(realm.seen(), "writer")
	hdr := jwtHeader(t, tok)
	if hdr["alg"] != "RS256" || hdr["kid"] == nil || hdr["x5c"] != nil {
		t.Errorf("token header %v, want GitLab's: RS256, a kid, no x5c", hdr)
	}
	if kid, _ := certs.LibtrustKeyID(key.Public()); hdr["kid"] != kid {
		t.Errorf("kid %v, want the libtrust fingerprint %s", hdr["kid"], kid)
	}

	for name, auth := range map[string]remote.Option{"writer": writer, "reader": reader} {
		pulled, err := remote.Image(ref, auth)
		if err != nil {
			t.Fatalf("pull as %s: %v", name, err)
		}
		if got, _ := pulled.Digest(); got != want {
			t.Errorf("pull as %s: digest %s, want %s", name, got, want)
		}
		layers, err := pulled.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, layer := range layers {
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("pull a layer as %s: %v", name, err)
			}
			rc.Close()
		}
	}

	// A pull-only token cannot push: the realm is asked for push, grants
	// only pull, and the registry refuses.
	other, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(mustRef(t, addr+"/group/app:v2"), other, reader)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized ||
		!slices.ContainsFunc(terr.Errors, func(d transport.Diagnostic) bool { return d.Code == transport.DeniedErrorCode }) {
		t.Fatalf("push as reader: %v, want 401 DENIED from the registry", err)
	}
	t.Logf("push as reader: %v", err)
	askedPush := false
	for _, r := range realm.seen() {
		for _, s := range r.Scopes {
			askedPush = askedPush || (r.User == "reader" && strings.Contains(s, "push"))
		}
	}
	if !askedPush {
		t.Errorf("the realm was never asked for push by reader: %+v", realm.seen())
	}
	if _, err := remote.Head(mustRef(t, addr+"/group/app:v2"), writer); err == nil {
		t.Error("group/app:v2 exists after the denied push")
	}

	// Anonymous through the client: the realm hands out a token that
	// grants nothing, and the registry refuses it.
	_, err = remote.Image(ref, remote.WithAuth(authn.Anonymous))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous pull: %v, want 401", err)
	}
	// Wrong credentials never get a token.
	_, err = remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "writer", Password: "wrong"}))
	if err == nil {
		t.Error("pull with a wrong password succeeded")
	}
	for _, r := range realm.seen() {
		if r.Service != token.Service {
			t.Errorf("realm asked for service %q, want %q", r.Service, token.Service)
		}
	}
}

// realmSite is a regctl serve whose token realm is a testRealm.
type realmSite struct {
	realmURL, addr, dir, settings string
	key                           crypto.Signer
}

// startRealmSite renders settings whose token realm is realm (extra
// appended), points realm at the internal key reconfigure made, and
// starts regctl serve on them.
func startRealmSite(t *testing.T, realm *testRealm, extra string) realmSite {
	t.Helper()
	// By host name, as GitLab's realm always is: go-containerregistry
	// refuses a realm on a loopback or private IP literal that is not the
	// registry's own host:port (against SSRF by a hostile registry).
	realmURL := strings.Replace(realm.URL, "127.0.0.1", "localhost", 1)
	dir := t.TempDir()
	addr := testtools.FreeAddr(t)
	settingsPath := filepath.Join(dir, "regctl.toml")
	src := "data_dir = \"data\"\nexternal_url = \"" + realmURL + "\"\n[registry]\nregistry_http_addr = \"" + addr + "\"\n" + extra
	if err := os.WriteFile(settingsPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runRegctl(t, dir, cleanEnv(), "--settings", settingsPath, "reconfigure"); code != 0 {
		t.Fatalf("reconfigure: exit %d\n%s", code, out)
	}
	l, err := settings.Load(settingsPath)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := reconfigure.LoadSecrets(l.Resolve().Secrets)
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.ParsePrivateKeyPEM([]byte(sec.Effective(&l.Settings.Registry).InternalKey))
	if err != nil {
		t.Fatal(err)
	}
	realm.use(key, l.Settings.GitlabRails.RegistryIssuer)
	startServeT(t, l.Resolve().ConfigYML, addr)
	return realmSite{realmURL: realmURL, addr: addr, dir: dir, settings: settingsPath, key: key}
}

// realmGranted reports whether user asked for action in some scope.
func realmGranted(reqs []realmRequest, user, action string) bool {
	for _, r := range reqs {
		for _, s := range r.Scopes {
			if r.User == user && strings.Contains(s, action) {
				return true
			}
		}
	}
	return false
}

func lastToken(reqs []realmRequest, user string) string {
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].User == user {
			return reqs[i].Token
		}
	}
	return ""
}

// jwtHeader decodes a compact JWS's header.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h
}
