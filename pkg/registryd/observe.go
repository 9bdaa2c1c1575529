package registryd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Observer sees every finished request, for metrics. route is one of
// RouteNames' values, method is normalized (unknown methods are
// "OTHER"), so labels stay few.
type Observer interface {
	ObserveRequest(route, method string, status int, d time.Duration)
}

// RouteNames are the route labels of requests.
var RouteNames = map[routeKind]string{
	routeBase: "base", routeCatalog: "catalog", routeTags: "tags", routeManifest: "manifest",
	routeBlob: "blob", routeUploads: "blob_upload", routeUpload: "blob_upload_chunk", routeReferrers: "referrers",
}

// routeUnknown labels requests that match no route.
const routeUnknown = "unknown"

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// recorder remembers a response's status and size. It passes ReadFrom
// through, so sendfile still serves blobs, and Flush and Unwrap for
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// writerOnly hides ReadFrom so io.Copy does not call back into it.
type writerOnly struct{ io.Writer }

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// finish records a served request: the observer's figures and the access
// log line. The line carries the path without its query (upload state
// and digests only, but nothing from a query belongs in a log) and no
// header but the user agent: credentials never reach the log.
func (s *Server) finish(r *http.Request, info *requestInfo, rec *recorder, start time.Time) {
	d := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := info.route
	if route == "" {
		route = routeUnknown
	}
	if s.opts.Observer != nil {
		s.opts.Observer.ObserveRequest(route, methodLabel(r.Method), status, d)
	}
	ctx := context.Background()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id),
		slog.String("remote_addr", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d),
		slog.String("user_agent", r.UserAgent()),
	}
	if info.actor != "" {
		attrs = append(attrs, slog.String("user", info.actor))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}
