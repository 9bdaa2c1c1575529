package auth

import (
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNeeds(t *testing.T) {
	repo := func(name string, actions ...string) []Access {
		var out []Access
		for _, a := range actions {
			out = append(out, Access{"repository", name, a})
		}
		return out
	}
	mount := url.Values{"mount": {"sha256:abc"}, "from": {"other/src"}}
	cases := []struct {
		kind, name, method string
		query              url.Values
		want               []Access
		scope              string
	}{
		{RouteBase, "", "GET", nil, nil, ""},
		{RouteCatalog, "", "GET", nil, []Access{{"registry", "catalog", "*"}}, "registry:catalog:*"},
		{RouteTags, "g/a", "GET", nil, repo("g/a", "pull"), "repository:g/a:pull"},
		{RouteManifest, "g/a", "HEAD", nil, repo("g/a", "pull"), "repository:g/a:pull"},
		{RouteManifest, "g/a", "PUT", nil, repo("g/a", "pull", "push"), "repository:g/a:pull,push"},
		{RouteManifest, "g/a", "DELETE", nil, repo("g/a", "delete"), "repository:g/a:delete"},
		{RouteBlob, "g/a", "GET", nil, repo("g/a", "pull"), "repository:g/a:pull"},
		{RouteBlob, "g/a", "DELETE", nil, repo("g/a", "delete"), "repository:g/a:delete"},
		{RouteUploads, "g/a", "POST", nil, repo("g/a", "pull", "push"), "repository:g/a:pull,push"},
		{RouteUploads, "g/a", "POST", mount, append(repo("g/a", "pull", "push"), repo("other/src", "pull")...), "repository:g/a:pull,push repository:other/src:pull"},
		{RouteUploads, "g/a", "POST", url.Values{"from": {"g/a"}, "mount": {"x"}}, repo("g/a", "pull", "push"), "repository:g/a:pull,push"},
		{RouteUpload, "g/a", "GET", mount, repo("g/a", "pull"), "repository:g/a:pull"},
		{RouteUpload, "g/a", "PATCH", nil, repo("g/a", "pull", "push"), "repository:g/a:pull,push"},
		{RouteUpload, "g/a", "PUT", nil, repo("g/a", "pull", "push"), "repository:g/a:pull,push"},
		{RouteUpload, "g/a", "DELETE", nil, repo("g/a", "delete"), "repository:g/a:delete"},
		{RouteReferrers, "g/a", "GET", nil, repo("g/a", "pull"), "repository:g/a:pull"},
		{RouteManifest, "g/a", "OPTIONS", nil, repo("g/a", "pull"), "repository:g/a:pull"},
		{"something-new", "", "GET", nil, []Access{{"registry", "route:something-new", "unknown"}}, "registry:route:something-new:unknown"},
	}
	for _, c := range cases {
		got := Needs(c.kind, c.name, c.method, c.query)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Needs(%s, %q, %s, %v) = %v, want %v", c.kind, c.name, c.method, c.query, got, c.want)
		}
		if s := scopeOf(got); s != c.scope {
			t.Errorf("scope of %s %s: got %q, want %q", c.method, c.kind, s, c.scope)
		}
	}
}

func TestChallengeString(t *testing.T) {
	c := Challenge{Scheme: "Bearer", Realm: `https://x/jwt/auth?a="b"\c`, Service: "s", Scope: "repository:a:pull", Error: "invalid_token"}
	if got, want := c.String(), `Bearer realm="https://x/jwt/auth?a=\"b\"\\c",service="s",scope="repository:a:pull",error="invalid_token"`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got := (Challenge{Scheme: "Basic", Realm: "r"}).String(); got != `Basic realm="r"` {
		t.Errorf("basic: %s", got)
	}
}

func TestErrorWrite(t *testing.T) {
	e := &Error{Status: 401, Code: CodeDenied, Message: "requested access to the resource is denied",
		Challenge: Challenge{Scheme: "Bearer", Realm: "r", Service: "s", Scope: "repository:a:push", Error: "insufficient_scope"},
		Need:      []Access{{"repository", "a", "push"}}, Err: ErrInsufficientScope}
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "99")
	e.Write(w, httptest.NewRequest("PUT", "/v2/a/manifests/x", nil))
	if w.Code != 401 || w.Header().Get("Content-Length") != "" || w.Header().Get("WWW-Authenticate") != e.Challenge.String() {
		t.Errorf("headers: %d %v", w.Code, w.Header())
	}
	want := `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":[{"type":"repository","name":"a","action":"push"}]}]}` + "\n"
	if w.Body.String() != want {
		t.Errorf("body: got %s want %s", w.Body.String(), want)
	}
	if got := e.Error(); got != "DENIED: requested access to the resource is denied (insufficient scope)" {
		t.Errorf("Error(): %s", got)
	}
	w = httptest.NewRecorder()
	e.Write(w, httptest.NewRequest("HEAD", "/v2/a/manifests/x", nil))
	if w.Body.Len() != 0 || w.Code != 401 {
		t.Errorf("HEAD: %d %q", w.Code, w.Body.String())
	}
}

func TestFromConfig(t *testing.T) {
	p := getPKI(t)
	htp := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htp, []byte("alice:"+bcryptHash(t, "pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := FromConfig(nil); c != nil || err != nil {
		t.Errorf("nil: %v, %v", c, err)
	}
	c, err := FromConfig(map[string]any{"token": map[string]any{
		"realm": testRealm, "service": testService, "issuer": testIssuer, "rootcertbundle": p.bundle, "autoredirect": false,
	}})
	if _, ok := c.(*TokenController); !ok || err != nil {
		t.Errorf("token: %T, %v", c, err)
	}
	c, err = FromConfig(map[string]any{"htpasswd": map[string]any{"realm": "r", "path": htp}})
	if _, ok := c.(*HTPasswdController); !ok || err != nil {
		t.Errorf("htpasswd: %T, %v", c, err)
	}
	bad := []struct {
		auth map[string]any
		want string
	}{
		{map[string]any{"token": map[string]any{"realm": 5}}, "auth.token.realm: must be a string, not int"},
		{map[string]any{"token": map[string]any{"realm": "r", "service": "s", "issuer": "i", "rootcertbundle": p.bundle, "autoredirect": "yes"}}, "auth.token.autoredirect: must be true or false, not string"},
		{map[string]any{"token": "x"}, "auth.token: must be a map, not string"},
		{map[string]any{"silly": map[string]any{}}, "auth.silly: unknown scheme (want token or htpasswd)"},
		{map[string]any{"token": map[string]any{}, "htpasswd": map[string]any{}}, "auth: names more than one scheme"},
		{map[string]any{"htpasswd": nil}, "auth.htpasswd.realm: must be set"},
	}
	for _, b := range bad {
		c, err := FromConfig(b.auth)
		if c != nil || err == nil || !strings.HasPrefix(err.Error(), b.want) {
			t.Errorf("%v: got %v, %v; want %q", b.auth, c, err, b.want)
		}
	}
}
