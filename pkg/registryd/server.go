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
	"regexp"
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
// suffix; the rest is the name. Order matters: uploads before blobs.
var routes = []struct {
	re   *regexp.Regexp
	kind routeKind
}{
	{regexp.MustCompile(`^(.+)/tags/list$`), routeTags},
	{regexp.MustCompile(`^(.+)/manifests/([^/]+)$`), routeManifest},
	{regexp.MustCompile(`^(.+)/blobs/uploads/?$`), routeUploads},
	{regexp.MustCompile(`^(.+)/blobs/uploads/([^/]+)$`), routeUpload},
	{regexp.MustCompile(`^(.+)/blobs/([^/]+)$`), routeBlob},
	{regexp.MustCompile(`^(.+)/referrers/([^/]+)$`), routeReferrers},
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
	for _, rt := range routes {
		m := rt.re.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		r := route{kind: rt.kind, name: m[1]}
		if len(m) > 2 {
			// A reference may arrive escaped ("sha256%3A..."); the name
			// stays raw so its check sees what the client sent.
			last, err := url.PathUnescape(m[2])
			if err != nil {
				return route{}, false
			}
			if rt.kind == routeUpload {
				r.uploadID = last
			} else {
				r.ref = last
			}
		}
		return r, true
	}
	return route{}, false
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
