package debugserver

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Options configure the debug listener.
type Options struct {
	Addr   string // http.debug.addr
	Health *Health
	// Vars is put under the "registry" key of /debug/vars, beside the
	// process's expvars (memstats, cmdline); called per request.
	Vars func() any
	// Metrics serves MetricsPath when not nil
	// (http.debug.prometheus.enabled).
	Metrics     http.Handler
	MetricsPath string
	Log         *slog.Logger
}

// Handler is the debug mux.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	if o.Health != nil {
		mux.Handle("/debug/health", o.Health)
	}
	mux.HandleFunc("/debug/vars", func(w http.ResponseWriter, r *http.Request) { serveVars(w, o.Vars) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if o.Metrics != nil {
		path := o.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		mux.Handle(path, o.Metrics)
	}
	return mux
}

// serveVars writes expvar's variables plus "registry" as one JSON object,
// in the format of expvar.Handler.
func serveVars(w http.ResponseWriter, vars func() any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	out := map[string]json.RawMessage{}
	expvar.Do(func(kv expvar.KeyValue) { out[kv.Key] = json.RawMessage(kv.Value.String()) })
	if vars != nil {
		b, err := json.Marshal(vars())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out["registry"] = b
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// Server is a running debug listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds Addr; errors name http.debug.addr.
func Listen(o Options) (*Server, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.debug.addr: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, srv: &http.Server{
		Handler:           Handler(o),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener, letting requests in flight finish for a few
// seconds (a CPU profile runs longer and is cut).
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}
