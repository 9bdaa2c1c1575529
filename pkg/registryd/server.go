// Package registryd is regctl's registry daemon: the OCI distribution-spec
// v1.1 API (plus what docker clients rely on from the Docker Registry HTTP
// API v2) on the CNCF Distribution storage layout.
package registryd

import (
	_ "crypto/sha256" // digest algorithms used by go-digest
	_ "crypto/sha512"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"regctl/pkg/storage"
)

// Options configure a Server.
type Options struct {
	Driver storage.Driver
	Log    *slog.Logger
	// DeleteEnabled allows blob and manifest DELETE (storage.delete.enabled).
	DeleteEnabled bool
	// ReadOnly starts the server in read-only maintenance mode.
	ReadOnly bool
	// RedirectDisabled serves blob bytes even when the driver can redirect.
	RedirectDisabled bool
	// Headers are added to every response (http.headers).
	Headers map[string][]string
	// RelativeURLs makes Location headers relative (http.relativeurls).
	RelativeURLs bool
}

// Server serves the registry API. Create it with New.
type Server struct {
	opts     Options
	driver   storage.Driver
	log      *slog.Logger
	readOnly atomic.Bool
	locks    keyedMutex
	// mediaTypes remembers what stored manifest bytes parse to; see
	// mediaTypeMemo for why it is no existence cache.
	mediaTypes mediaTypeMemo
}

// New makes a Server.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, driver: opts.Driver, log: opts.Log}
	s.readOnly.Store(opts.ReadOnly)
	return s
}

// Driver is the storage the server works on.
func (s *Server) Driver() storage.Driver { return s.driver }

// SetReadOnly switches read-only maintenance mode; requests already
// running finish, new writes are refused.
func (s *Server) SetReadOnly(on bool) { s.readOnly.Store(on) }

// ReadOnly reports read-only maintenance mode.
func (s *Server) ReadOnly() bool { return s.readOnly.Load() }

// route is a parsed /v2/ request path.
type route struct {
	kind     routeKind
	name     string // repository
	ref      string // tag or digest (manifests), digest (blobs, referrers)
	uploadID string
}

type routeKind int

const (
	routeBase routeKind = iota
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUploads // POST /blobs/uploads/
	routeUpload  // /blobs/uploads/<id>
	routeReferrers
)

// Repository names may contain slashes, so routes are matched on their
// suffix; the rest is the name, which must be non-empty and hold no
// newline. Order matters: uploads before blobs. Each route is what the
// regular expression in its comment matches (server_test.go checks the
// parser against them); matching by hand keeps regexps off the path of
// every request.
func matchRoute(rest string) (kind routeKind, name, last string, ok bool) {
	// `^(.+)/tags/list$`
	if n, found := strings.CutSuffix(rest, "/tags/list"); found && validRouteName(n) {
		return routeTags, n, "", true
	}
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return 0, "", "", false
	}
	prefix, seg := rest[:slash], rest[slash+1:]
	// `^(.+)/manifests/([^/]+)$`
	if n, found := strings.CutSuffix(prefix, "/manifests"); found && seg != "" && validRouteName(n) {
		return routeManifest, n, seg, true
	}
	// `^(.+)/blobs/uploads/?$`
	if n, found := strings.CutSuffix(rest, "/blobs/uploads"); found && validRouteName(n) {
		return routeUploads, n, "", true
	}
	if n, found := strings.CutSuffix(rest, "/blobs/uploads/"); found && validRouteName(n) {
		return routeUploads, n, "", true
	}
	// `^(.+)/blobs/uploads/([^/]+)$`
	if n, found := strings.CutSuffix(prefix, "/blobs/uploads"); found && seg != "" && validRouteName(n) {
		return routeUpload, n, seg, true
	}
	// `^(.+)/blobs/([^/]+)$`
	if n, found := strings.CutSuffix(prefix, "/blobs"); found && seg != "" && validRouteName(n) {
		return routeBlob, n, seg, true
	}
	// `^(.+)/referrers/([^/]+)$`
	if n, found := strings.CutSuffix(prefix, "/referrers"); found && seg != "" && validRouteName(n) {
		return routeReferrers, n, seg, true
	}
	return 0, "", "", false
}

// validRouteName is the `(.+)` of a route: "." matches anything but a
// newline. The name grammar is checked later, with its own error.
func validRouteName(n string) bool {
	return n != "" && strings.IndexByte(n, '\n') < 0
}

func parseRoute(path string) (route, bool) {
	switch path {
	case "/v2", "/v2/":
		return route{kind: routeBase}, true
	case "/v2/_catalog":
		return route{kind: routeCatalog}, true
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, false
	}
	kind, name, last, ok := matchRoute(rest)
	if !ok {
		return route{}, false
	}
	r := route{kind: kind, name: name}
	if kind == routeManifest || kind == routeUpload || kind == routeBlob || kind == routeReferrers {
		// A reference may arrive escaped ("sha256%3A..."); the name
		// stays raw so its check sees what the client sent.
		last, err := url.PathUnescape(last)
		if err != nil {
			return route{}, false
		}
		if kind == routeUpload {
			r.uploadID = last
		} else {
			r.ref = last
		}
	}
	return r, true
}

// writeMethods are refused in read-only mode.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	for k, vs := range s.opts.Headers {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	// Use the raw path so that an encoded "%2F" or "%2e" cannot smuggle a
	// separator or dot segment past the name check.
	path := r.URL.EscapedPath()
	rt, ok := parseRoute(path)
	if !ok {
		s.writeError(w, r, newError(http.StatusNotFound, CodeNameUnknown, "no such API endpoint"))
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog {
		if err := checkName(rt.name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if isWrite(r.Method) && s.ReadOnly() {
		s.writeError(w, r, newError(http.StatusMethodNotAllowed, CodeUnsupported,
			"the registry is in read-only maintenance mode: pulls work, pushes and deletes are refused until maintenance ends"))
		return
	}
	if err := s.dispatch(w, r, rt); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt route) error {
	m := r.Method
	switch rt.kind {
	case routeBase:
		if m == http.MethodGet || m == http.MethodHead {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusOK)
			if m == http.MethodGet {
				w.Write([]byte("{}"))
			}
			return nil
		}
	case routeCatalog:
		if m == http.MethodGet {
			return s.getCatalog(w, r)
		}
	case routeTags:
		if m == http.MethodGet {
			return s.getTags(w, r, rt.name)
		}
	case routeManifest:
		switch m {
		case http.MethodGet, http.MethodHead:
			return s.getManifest(w, r, rt.name, rt.ref)
		case http.MethodPut:
			return s.putManifest(w, r, rt.name, rt.ref)
		case http.MethodDelete:
			return s.deleteManifest(w, r, rt.name, rt.ref)
		}
	case routeBlob:
		switch m {
		case http.MethodGet, http.MethodHead:
			return s.getBlob(w, r, rt.name, rt.ref)
		case http.MethodDelete:
			return s.deleteBlob(w, r, rt.name, rt.ref)
		}
	case routeUploads:
		if m == http.MethodPost {
			return s.startUpload(w, r, rt.name)
		}
	case routeUpload:
		switch m {
		case http.MethodGet:
			return s.uploadStatus(w, r, rt.name, rt.uploadID)
		case http.MethodPatch:
			return s.patchUpload(w, r, rt.name, rt.uploadID)
		case http.MethodPut:
			return s.finishUpload(w, r, rt.name, rt.uploadID)
		case http.MethodDelete:
			return s.cancelUpload(w, r, rt.name, rt.uploadID)
		}
	case routeReferrers:
		if m == http.MethodGet {
			return s.getReferrers(w, r, rt.name, rt.ref)
		}
	}
	return newError(http.StatusMethodNotAllowed, CodeUnsupported, "method "+m+" is not allowed here")
}
