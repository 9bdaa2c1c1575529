// Package registryd is regctl's registry daemon: the OCI distribution-spec
// v1.1 API (plus what docker clients rely on from the Docker Registry HTTP
// API v2) on the CNCF Distribution storage layout.
package registryd

import (
	"context"
	_ "crypto/sha256" // digest algorithms used by go-digest
	_ "crypto/sha512"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"regctl/pkg/auth"
	"regctl/pkg/blobcache"
	"regctl/pkg/notify"
	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// Options configure a Server.
type Options struct {
	Driver storage.Driver
	Log    *slog.Logger
	// DeleteEnabled allows blob and manifest DELETE (storage.delete.enabled).
	DeleteEnabled bool
	// ReadOnly starts the server in read-only mode
	// (storage.maintenance.readonly.enabled).
	ReadOnly bool
	// RedirectDisabled serves blob bytes even when the driver can redirect.
	RedirectDisabled bool
	// Headers are added to every response (http.headers).
	Headers map[string][]string
	// RelativeURLs makes Location headers relative (http.relativeurls).
	RelativeURLs bool
	// Auth checks every request (auth.token or auth.htpasswd); nil
	// serves without authentication.
	Auth auth.Controller
	// Notifier receives push, pull, mount and delete events; nil sends
	// none.
	Notifier Notifier
	// Observer sees every finished request (metrics); nil: none.
	Observer Observer
	// Cache is the shared blob descriptor cache (cache.go); nil for none.
	Cache blobcache.Cache
	// NoReferences leaves the references out of manifest push and pull
	// events (notifications.events.includereferences: false).
	NoReferences bool
	// Unhealthy reports that a health check (health.storagedriver) is
	// down: every API request then answers 503 UNAVAILABLE, as CNCF
	// Distribution's do, so a load balancer takes the node out. nil:
	// never.
	Unhealthy func() bool
	// ReferrersFallbackTags keeps the referrers tag schema's index
	// (tag <alg>-<hex> of each subject) up to date on every referrer push
	// and delete, for CNCF Distribution on the same root
	// (regctl.referrers.fallbacktags).
	ReferrersFallbackTags bool
}

// Server serves the registry API. Create it with New.
type Server struct {
	opts     Options
	driver   storage.Driver
	log      *slog.Logger
	readOnly atomic.Bool // the configured read-only mode
	// authc holds the auth.Controller in use; SIGHUP may swap it (a
	// rotated rootcertbundle) without a restart.
	authc  atomic.Pointer[authHolder]
	writes writeGate
	locks  keyedMutex
	// fallbackTags is Options.ReferrersFallbackTags; a reload may switch it.
	fallbackTags atomic.Bool
	backfilling  atomic.Bool // RunFallbackBackfill is running
	// beforeFallbackWrite, when set by a test, runs between syncFallback's
	// read and its write, to force an interleaving of two nodes.
	beforeFallbackWrite func()
	// mediaTypes remembers what stored manifest bytes parse to; see
	// mediaTypeMemo for why it is no existence cache.
	mediaTypes mediaTypeMemo
	// fence is SetWriteFence's function, nil for none.
	fence atomic.Pointer[func() string]
}

// New makes a Server.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, driver: opts.Driver, log: opts.Log}
	s.readOnly.Store(opts.ReadOnly)
	s.fallbackTags.Store(opts.ReferrersFallbackTags)
	s.SetAuth(opts.Auth)
	return s
}

type authHolder struct{ c auth.Controller }

// SetAuth replaces the authentication in use; nil turns it off.
func (s *Server) SetAuth(c auth.Controller) { s.authc.Store(&authHolder{c}) }

func (s *Server) auth() auth.Controller { return s.authc.Load().c }

// authKinds names routes as pkg/auth knows them.
var authKinds = map[routeKind]string{
	routeBase: auth.RouteBase, routeCatalog: auth.RouteCatalog, routeTags: auth.RouteTags,
	routeManifest: auth.RouteManifest, routeBlob: auth.RouteBlob, routeUploads: auth.RouteUploads,
	routeUpload: auth.RouteUpload, routeReferrers: auth.RouteReferrers,
}

// authorize checks the request against what its route needs. It has
// written the answer when it returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, rt route) bool {
	c := s.auth()
	if c == nil {
		return true
	}
	g, err := c.Authorize(r, auth.Needs(authKinds[rt.kind], rt.name, r.Method, r.URL.Query()))
	if err == nil {
		if g != nil {
			infoOf(r).actor = g.Subject
		}
		return true
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		s.log.Info("request refused", "request_id", infoOf(r).id, "method", r.Method, "path", r.URL.Path, "status", ae.Status, "reason", ae.Err)
		ae.Write(w, r)
		return false
	}
	// The controller itself failed (an htpasswd file gone): refuse.
	s.writeError(w, r, fmt.Errorf("authorizing %s %s: %w", r.Method, r.URL.Path, err))
	return false
}

// Driver is the storage the server works on.
func (s *Server) Driver() storage.Driver { return s.driver }

// SetReadOnly switches the configured read-only mode
// (storage.maintenance.readonly.enabled); requests already running
// finish, new writes are refused. It is independent of maintenance: the
// server refuses writes while either is on.
func (s *Server) SetReadOnly(on bool) {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	s.readOnly.Store(on)
}

// SetReferrersFallbackTags switches Options.ReferrersFallbackTags.
func (s *Server) SetReferrersFallbackTags(on bool) { s.fallbackTags.Store(on) }

// ReadOnly reports the configured read-only mode, not maintenance.
func (s *Server) ReadOnly() bool { return s.readOnly.Load() }

// SetMaintenance refuses new writes for a maintenance job (cluster-wide
// garbage collection, a storage cutover) until ClearMaintenance; reason
// is shown in the 405 answers ("garbage collection by host/pid/command").
// Writes already admitted go on: WaitWritesIdle waits for them. Calling it
// again replaces the reason.
func (s *Server) SetMaintenance(reason string) {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	s.writes.maintenance, s.writes.reason = true, reason
}

// ClearMaintenance ends maintenance; the configured read-only mode stays
// as it is.
func (s *Server) ClearMaintenance() {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	s.writes.maintenance, s.writes.reason = false, ""
}

// SetWriteFence makes every write ask f, at admission and again just
// before it commits (links a blob into a repository, stores a
// manifest), whether this node may write: a non-empty answer is why
// not, and refuses the write as maintenance does. A daemon in a cluster
// sets the agent's (maintenance.Agent.WriteFence), so that a node
// resuming from a long stop refuses a write before its watchdog has
// run; f must not block. nil removes it.
func (s *Server) SetWriteFence(f func() string) {
	if f == nil {
		s.fence.Store(nil)
		return
	}
	s.fence.Store(&f)
}

// fenced is why the write fence refuses writes now, "" when it does not.
func (s *Server) fenced() string {
	if f := s.fence.Load(); f != nil {
		return (*f)()
	}
	return ""
}

// checkFence refuses a write about to commit, as admitWrite would, when
// the write fence says so.
func (s *Server) checkFence() error {
	if why := s.fenced(); why != "" {
		return refuseWrites([]string{maintenanceWhy(why)})
	}
	return nil
}

// Maintenance reports whether maintenance is on, and its reason.
func (s *Server) Maintenance() (reason string, on bool) {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return s.writes.reason, s.writes.maintenance
}

// RefusesWrites reports the effective state: read-only by configuration
// or for maintenance.
func (s *Server) RefusesWrites() bool {
	_, on := s.Maintenance()
	return on || s.ReadOnly()
}

// WritesInFlight is the number of write requests admitted and not yet
// finished.
func (s *Server) WritesInFlight() int {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return s.writes.inFlight
}

// WaitWritesIdle returns once no admitted write request is running, or
// with ctx's error. After SetMaintenance it means the storage holds
// still: no write runs and none will start, which is what a node
// acknowledges to a maintenance job.
func (s *Server) WaitWritesIdle(ctx context.Context) error {
	g := &s.writes
	g.mu.Lock()
	if g.inFlight == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeGate admits write requests. The check and the count happen under
// one lock that SetMaintenance takes too, so once SetMaintenance returns
// every write was either admitted before, and is counted, or is refused:
// none can slip in between a check and the switch.
type writeGate struct {
	mu          sync.Mutex
	maintenance bool
	reason      string
	inFlight    int
	idle        chan struct{} // closed when inFlight drops to 0
}

// admitWrite counts a write request in, or refuses it with the 405 that
// says why; done must be called when the request ends.
func (s *Server) admitWrite() (done func(), refused *ocierr.Error) {
	g := &s.writes
	g.mu.Lock()
	defer g.mu.Unlock()
	var why []string
	if s.readOnly.Load() {
		why = append(why, "the registry is in read-only maintenance mode (storage.maintenance.readonly.enabled)")
	}
	if g.maintenance {
		why = append(why, maintenanceWhy(g.reason))
	} else if f := s.fenced(); f != "" {
		why = append(why, maintenanceWhy(f))
	}
	if len(why) > 0 {
		return nil, refuseWrites(why)
	}
	g.inFlight++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.inFlight--; g.inFlight == 0 && g.idle != nil {
			close(g.idle)
			g.idle = nil
		}
	}, nil
}

func maintenanceWhy(reason string) string { return "read-only maintenance: " + reason }

// refuseWrites is the 405 of a refused write, saying why.
func refuseWrites(why []string) *ocierr.Error {
	return ocierr.New(http.StatusMethodNotAllowed, CodeUnsupported,
		strings.Join(why, "; ")+": pulls work, pushes and deletes are refused until it ends")
}

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

// routeMethods are the methods each route answers, as dispatch serves
// them, in the order the Allow header of a 405 lists them.
// (TestRouteMethodsMatchDispatch holds the two to the same answers.)
var routeMethods = map[routeKind][]string{
	routeBase:      {http.MethodGet, http.MethodHead},
	routeCatalog:   {http.MethodGet},
	routeTags:      {http.MethodGet},
	routeManifest:  {http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
	routeBlob:      {http.MethodGet, http.MethodHead, http.MethodDelete},
	routeUploads:   {http.MethodPost},
	routeUpload:    {http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete},
	routeReferrers: {http.MethodGet},
}

// allow is the Allow header RFC 9110 requires on a 405: the methods the
// route answers at the moment, so without writes while the registry
// refuses them (refusesWrites) and without the manifest and blob DELETE
// while deletes are disabled (an upload's DELETE is a cancel, which
// storage.delete.enabled does not govern). It may be empty (POST on
// uploads while read-only): net/http still sends the header, "Allow: ",
// over HTTP/1.1 and HTTP/2 (TestAllowEmptyIsSent), which RFC 9110 reads
// as "no method is allowed now".
func (s *Server) allow(kind routeKind, refusesWrites bool) string {
	var allowed []string
	for _, m := range routeMethods[kind] {
		if refusesWrites && isWrite(m) ||
			m == http.MethodDelete && !s.opts.DeleteEnabled && (kind == routeManifest || kind == routeBlob) {
			continue
		}
		allowed = append(allowed, m)
	}
	return strings.Join(allowed, ", ")
}

// writeMethods are refused in read-only mode.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// ServeHTTP serves a request, then records it: the observer's figures
// and an access log line with the request's id.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{id: notify.NewID()}
	r = withRequestInfo(r, info)
	rec := &recorder{ResponseWriter: w}
	defer s.finish(r, info, rec, start)
	s.route(rec, r, info)
}

// route routes a request.
func (s *Server) route(w http.ResponseWriter, r *http.Request, info *requestInfo) {
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
		s.writeError(w, r, ocierr.New(http.StatusNotFound, CodeNameUnknown, "no such API endpoint"))
		return
	}
	info.route = RouteNames[rt.kind]
	if s.opts.Unhealthy != nil && s.opts.Unhealthy() {
		s.writeError(w, r, ocierr.New(http.StatusServiceUnavailable, CodeUnavailable,
			"service unavailable: a health check of this registry fails (see /debug/health on its debug address)"))
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog {
		if err := checkName(rt.name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !s.authorize(w, r, rt) {
		return
	}
	if isWrite(r.Method) {
		done, refused := s.admitWrite()
		if refused != nil {
			h.Set("Allow", s.allow(rt.kind, true))
			s.writeError(w, r, refused)
			return
		}
		defer done()
	}
	if err := s.dispatch(w, r, rt); err != nil {
		var ae *ocierr.Error
		if errors.As(err, &ae) && ae.Status == http.StatusMethodNotAllowed {
			h.Set("Allow", s.allow(rt.kind, s.RefusesWrites() || s.fenced() != ""))
		}
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
	return ocierr.New(http.StatusMethodNotAllowed, CodeUnsupported, "method "+m+" is not allowed here")
}
