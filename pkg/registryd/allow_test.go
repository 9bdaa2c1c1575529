package registryd

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// allowOf is the Allow header of a response and whether it was sent at
// all (an empty value still counts as sent).
func allowOf(r result) (string, bool) {
	vs, ok := r.h["Allow"]
	return strings.Join(vs, ", "), ok
}

// expectAllow sends a request and fails unless it is answered 405
// UNSUPPORTED (HEAD: no body) with an Allow header of exactly want.
func (e *blobEnv) expectAllow(method, path, want string) {
	e.t.Helper()
	r := e.do(method, path, nil)
	what := method + " " + path
	if r.code != http.StatusMethodNotAllowed || method != http.MethodHead && r.errCode() != CodeUnsupported {
		e.t.Errorf("%s: %d %q (%s), want 405 UNSUPPORTED", what, r.code, r.errCode(), strings.TrimSpace(string(r.body)))
		return
	}
	if got, ok := allowOf(r); !ok || got != want {
		e.t.Errorf("%s: Allow %q (sent: %v), want %q", what, got, ok, want)
	}
}

var someDigest = digest.FromString("x").String()

// Read-only by configuration and maintenance both answer writes with the
// route's read methods; POST on uploads has none, and sends "Allow: ".
func TestAllowWhileRefusingWrites(t *testing.T) {
	for _, mode := range []struct {
		name string
		set  func(*Server)
	}{
		{"readonly", func(s *Server) { s.SetReadOnly(true) }},
		{"maintenance", func(s *Server) { s.SetMaintenance("garbage collection by h/1/regctl gc") }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newBlobEnv(t, nil)
			loc := e.startUpload("app")
			mode.set(e.srv)
			for _, c := range []struct{ method, path, want string }{
				{http.MethodPut, "/v2/app/manifests/v1", "GET, HEAD"},
				{http.MethodDelete, "/v2/app/manifests/v1", "GET, HEAD"},
				{http.MethodDelete, "/v2/app/blobs/" + someDigest, "GET, HEAD"},
				{http.MethodPost, "/v2/app/blobs/uploads/", ""},
				{http.MethodPatch, loc, "GET"},
				{http.MethodPut, loc, "GET"},
				{http.MethodDelete, loc, "GET"},
				// A write the route does not take: refused for read-only
				// first, with the same Allow.
				{http.MethodPost, "/v2/app/tags/list", "GET"},
				// A read the route does not take, while read-only.
				{http.MethodGet, "/v2/app/blobs/uploads/", ""},
			} {
				e.expectAllow(c.method, c.path, c.want)
			}
			if r := e.do(http.MethodGet, "/v2/", nil); r.code != http.StatusOK {
				t.Errorf("GET /v2/: %d", r.code)
			} else if _, ok := allowOf(r); ok {
				t.Errorf("GET /v2/ sent Allow %q", r.h.Get("Allow"))
			}
		})
	}
}

// A method a route does not take gets the route's methods.
func TestAllowWrongMethod(t *testing.T) {
	e := newBlobEnv(t, nil)
	for _, c := range []struct{ method, path, want string }{
		{http.MethodPost, "/v2/app/tags/list", "GET"},
		{http.MethodHead, "/v2/app/tags/list", "GET"},
		{http.MethodPut, "/v2/", "GET, HEAD"},
		{http.MethodPost, "/v2/app/manifests/v1", "GET, HEAD, PUT, DELETE"},
		{http.MethodPatch, "/v2/app/blobs/" + someDigest, "GET, HEAD, DELETE"},
		{http.MethodGet, "/v2/app/blobs/uploads/", "POST"},
		{http.MethodDelete, "/v2/app/referrers/" + someDigest, "GET"},
	} {
		e.expectAllow(c.method, c.path, c.want)
	}
}

// With deletes disabled, the manifest and blob DELETE are left out of
// Allow, and their "deletes are disabled" 405s carry it too. Cancelling
// an upload is no delete.
func TestAllowDeletesDisabled(t *testing.T) {
	e := newBlobEnv(t, func(o *Options) { o.DeleteEnabled = false })
	loc := e.startUpload("app")
	for _, c := range []struct{ method, path, want string }{
		{http.MethodDelete, "/v2/app/manifests/v1", "GET, HEAD, PUT"},
		{http.MethodDelete, "/v2/app/blobs/" + someDigest, "GET, HEAD"},
		{http.MethodPost, "/v2/app/manifests/v1", "GET, HEAD, PUT"},
		{http.MethodPost, loc, "GET, PATCH, PUT, DELETE"},
	} {
		e.expectAllow(c.method, c.path, c.want)
	}
	if r := e.do(http.MethodDelete, loc, nil); r.code != http.StatusNoContent {
		t.Errorf("DELETE upload with deletes disabled: %d %s", r.code, r.body)
	}
	e.srv.SetReadOnly(true)
	e.expectAllow(http.MethodDelete, "/v2/app/manifests/v1", "GET, HEAD")
}

// routeMethods lists exactly the methods dispatch serves: every other
// method answers 405, and every listed one something else.
func TestRouteMethodsMatchDispatch(t *testing.T) {
	e := newBlobEnv(t, nil)
	paths := map[routeKind]string{
		routeBase:      "/v2/",
		routeCatalog:   "/v2/_catalog",
		routeTags:      "/v2/app/tags/list",
		routeManifest:  "/v2/app/manifests/v1",
		routeBlob:      "/v2/app/blobs/" + someDigest,
		routeUploads:   "/v2/app/blobs/uploads/",
		routeUpload:    "/v2/app/blobs/uploads/0f7d6d4e-5b1e-4d8c-9a3e-3c1f0e1b2a4d",
		routeReferrers: "/v2/app/referrers/" + someDigest,
	}
	for kind, label := range RouteNames {
		path, ok := paths[kind]
		if !ok || routeMethods[kind] == nil {
			t.Errorf("route %s: no path or no methods in the test", label)
			continue
		}
		listed := map[string]bool{}
		for _, m := range routeMethods[kind] {
			listed[m] = true
		}
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			r := e.do(m, path, nil)
			if got := r.code == http.StatusMethodNotAllowed; got == listed[m] {
				t.Errorf("%s %s: %d; listed in routeMethods: %v", m, path, r.code, listed[m])
			}
		}
	}
}

// net/http sends an empty Allow value, over HTTP/1.1 and HTTP/2 alike.
func TestAllowEmptyIsSent(t *testing.T) {
	drv, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(New(Options{Driver: drv, ReadOnly: true}))
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Post(hs.URL+"/v2/app/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if vs, ok := resp.Header["Allow"]; resp.StatusCode != http.StatusMethodNotAllowed || !ok || len(vs) != 1 || vs[0] != "" {
			t.Errorf("%s: %d, Allow %q (sent: %v), want 405 with an empty Allow", resp.Proto, resp.StatusCode, vs, ok)
		}
		if h2 != (resp.ProtoMajor == 2) {
			t.Errorf("got %s, want HTTP/2 %v", resp.Proto, h2)
		}
		tr.CloseIdleConnections()
	}
}
