// Package serve is the `regctl serve` daemon and nothing else: it builds
// the registry server from a config (storage, cache, auth, notifications,
// metrics), runs it with its listener, debug server, cluster heartbeats
// and background jobs, reloads what can change on SIGHUP, and drains on
// shutdown.
//
// What other commands need to know about a daemon lives elsewhere, so
// that they do not depend on it: which config.yml to use (configsrc), the
// pid file (pidfile), which config changes need a restart
// (distconfig.RestartReasons), the heartbeat interval
// (maintenance.ClusterHeartbeat), the shared cache (blobcache.Open) and
// applying a new config to a running daemon (service.Apply).
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"regctl/pkg/auth"
	"regctl/pkg/blobcache"
	"regctl/pkg/debugserver"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/metrics"
	"regctl/pkg/notify"
	"regctl/pkg/registryd"
	"regctl/pkg/storage"
)

// Daemon is `regctl serve`: a Server bound to its config, listener and
// background jobs, able to reload what can change without a restart.
type Daemon struct {
	ConfigPath string // "" for the embedded default
	// HeartbeatInterval is how often the daemon reads the maintenance
	// lease and writes its heartbeat into the storage:
	// REGCTL_CLUSTER_HEARTBEAT, else regctl.cluster.heartbeat, else
	// maintenance.DefaultHeartbeat.
	// Set it before Run.
	HeartbeatInterval time.Duration
	// Version goes into the heartbeat; the build's module version when
	// empty.
	Version string
	nodeID  string
	server  *registryd.Server
	notify  *notify.Manager // nil without enabled endpoints
	health  *debugserver.Health
	metrics *metrics.Metrics // nil unless http.debug.prometheus.enabled
	cfg     *distconfig.Config
	log     *slog.Logger
	level   *slog.LevelVar
	mu      sync.Mutex
	// background is the context of Run's background jobs, under mu; nil
	// before Run. A reload starts jobs in it.
	background context.Context
	// fatal stops Run when a reload must not be served.
	fatal chan error
}

// NewDaemon checks the config and builds the storage driver and server.
// Settings that ask for protection regctl cannot give yet stop it here,
// naming the key: serving without them would be serving unprotected.
func NewDaemon(cfg *distconfig.Config, configPath string, log *slog.Logger, level *slog.LevelVar) (*Daemon, error) {
	if cfg.HTTP.Addr == "" {
		return nil, errors.New("http.addr: the config names no address to listen on")
	}
	if err := refuseUnsupported(cfg, log); err != nil {
		return nil, err
	}
	driver, err := storage.Open(context.Background(), cfg.Storage.Driver, cfg.Storage.Params)
	if err != nil {
		return nil, err
	}
	if level != nil {
		level.Set(LogLevel(cfg.Log.Level))
	}
	authc, err := auth.FromConfig(cfg.Auth)
	if err != nil {
		return nil, err
	}
	if authc == nil {
		log.Warn("no auth section: anyone who can reach this registry can push, pull and delete")
	}
	// Metrics exist only when asked for: the timed driver and the
	// per-request figures cost a little on every request.
	var mx *metrics.Metrics
	var observer registryd.Observer
	switch dc := cfg.HTTP.Debug; {
	case dc.Prometheus.Enabled && dc.Addr == "":
		log.Warn("http.debug.prometheus.enabled: there is no http.debug.addr to serve the metrics on; metrics are off")
	case dc.Prometheus.Enabled:
		mx = metrics.New()
		driver = mx.Driver(driver)
		observer = mx
	}
	cache, err := blobcache.Open(cfg, log)
	if err != nil {
		return nil, err
	}
	if g, ok := cache.(*blobcache.Guarded); ok && mx != nil {
		mx.BlobCache(g.Stats)
	}
	heartbeat, err := maintenance.ClusterHeartbeat(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	// Last step that can fail: the queues it opens are locked until Run
	// ends.
	var notifier registryd.Notifier
	nm, err := newNotifier(cfg, configPath, log)
	if err != nil {
		return nil, err
	}
	if nm != nil {
		notifier = nm
		if mx != nil {
			mx.Notifications(nm.Stats)
		}
	}
	// Health checks answer /debug/health and, while one is down, every
	// API request (503), as Distribution's do.
	health := debugserver.NewHealth(log)
	srv := registryd.New(registryd.Options{
		Notifier:         notifier,
		Observer:         observer,
		Auth:             authc,
		Driver:           driver,
		Log:              log,
		DeleteEnabled:    cfg.Storage.DeleteEnabled,
		ReadOnly:         cfg.Storage.ReadOnly,
		RedirectDisabled: cfg.Storage.RedirectDisabled,
		Headers:          cfg.HTTP.Headers,
		RelativeURLs:     cfg.HTTP.RelativeURLs,
		Cache:            cache,
		Unhealthy:        health.Down,
		NoReferences:     !cfg.Notifications.IncludeReferences,

		ReferrersFallbackTags: cfg.Referrers.FallbackTags,
	})
	return &Daemon{
		ConfigPath: configPath, HeartbeatInterval: heartbeat, nodeID: maintenance.NewNodeID(),
		server: srv, notify: nm, metrics: mx, health: health, cfg: cfg, log: log, level: level, fatal: make(chan error, 1),
	}, nil
}

// Server is the API handler, for tests and embedding.
func (d *Daemon) Server() *registryd.Server { return d.server }

// NodeID is this daemon's id among the nodes on its storage, new at
// every start, so a restart never takes over a crashed run's heartbeat.
func (d *Daemon) NodeID() string { return d.nodeID }

func (d *Daemon) version() string {
	if d.Version != "" {
		return d.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return ""
}

// refuseUnsupported fails closed on protection settings regctl does not
// implement yet, and warns about features that are not active.
func refuseUnsupported(cfg *distconfig.Config, log *slog.Logger) error {
	var errs []string
	if len(cfg.HTTP.TLS.ClientCAs) > 0 {
		errs = append(errs, "http.tls.clientcas: client certificate authentication is not supported yet")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// LogLevel maps Distribution's level names to slog levels.
func LogLevel(name string) slog.Level {
	switch strings.ToLower(name) {
	case "debug", "trace":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal", "panic":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Reload re-reads the config file and applies what can change without a
// restart: auth, read-only mode, the log level and regctl.referrers,
// which distconfig.RestartReasons leaves out (change the two together).
// Requests in flight are not interrupted. Anything else that changed is
// reported as needing a restart.
func (d *Daemon) Reload() error {
	if d.ConfigPath == "" {
		return errors.New("the embedded default config has no file to reload")
	}
	cfg, err := distconfig.Load(d.ConfigPath, d.log)
	if err != nil {
		return fmt.Errorf("reload: %w (keeping the running config)", err)
	}
	if err := refuseUnsupported(cfg, d.log); err != nil {
		// The new config asks for protection this daemon cannot give:
		// fail closed by stopping rather than serving on unprotected.
		err = fmt.Errorf("reload: %w; stopping", err)
		select {
		case d.fatal <- err:
		default:
		}
		return err
	}
	// Auth is rebuilt from the file each time, so a rotated
	// rootcertbundle or htpasswd file takes effect without a restart; a
	// broken auth section rejects the whole reload and the running
	// protection stays.
	authc, err := auth.FromConfig(cfg.Auth)
	if err != nil {
		return fmt.Errorf("reload: %w (keeping the running config)", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.server.SetAuth(authc)
	switch {
	case authc == nil && d.cfg.Auth != nil:
		d.log.Warn("reload removed the auth section: anyone who can reach this registry can push, pull and delete")
	case fmt.Sprint(cfg.Auth) != fmt.Sprint(d.cfg.Auth):
		d.log.Info("authentication reloaded")
	}
	d.cfg.Auth = cfg.Auth
	if cfg.Storage.ReadOnly != d.server.ReadOnly() {
		d.server.SetReadOnly(cfg.Storage.ReadOnly)
		d.log.Info("read-only mode changed", "read_only", cfg.Storage.ReadOnly)
	}
	if cfg.Referrers.FallbackTags != d.cfg.Referrers.FallbackTags {
		d.server.SetReferrersFallbackTags(cfg.Referrers.FallbackTags)
		d.log.Info("referrers fallback tags changed", "fallback_tags", cfg.Referrers.FallbackTags)
		if cfg.Referrers.FallbackTags && d.background != nil {
			go d.server.RunFallbackBackfill(d.background, fallbackBackfillRetry)
		}
	}
	if d.level != nil && cfg.Log.Level != d.cfg.Log.Level {
		// The level is set first, so no line after this one slips out at
		// the old level; the line itself is said at the new level (info
		// at least), so it shows whichever way the level moves.
		next := LogLevel(cfg.Log.Level)
		d.level.Set(next)
		d.log.Log(context.Background(), max(next, slog.LevelInfo), "log level changed", "level", cfg.Log.Level)
	}
	if reasons := distconfig.RestartReasons(d.cfg, cfg); len(reasons) > 0 {
		// d.cfg keeps what runs, so the warning repeats until a restart.
		d.log.Warn("config changes need a restart to take effect (regctl restart)", "keys", strings.Join(reasons, ", "))
	}
	d.cfg.Storage.ReadOnly, d.cfg.Log.Level = cfg.Storage.ReadOnly, cfg.Log.Level
	d.cfg.Referrers = cfg.Referrers
	return nil
}

// fallbackBackfillRetry is how long a fallback tag backfill that
// maintenance interrupted waits before it tries again.
const fallbackBackfillRetry = time.Minute

// Run listens and serves until ctx ends, then drains requests in flight
// for up to http.draintimeout before closing.
func (d *Daemon) Run(ctx context.Context, ready func(addr string)) error {
	if d.notify != nil {
		// Deferred first, so it runs last: after the HTTP server has
		// drained, the events of those requests are on disk. On an early
		// failure it releases the queues.
		defer d.notify.Stop()
	}
	// The debug listener is bound before the API's: once the API port
	// accepts connections, /debug/health answers too.
	if dc := d.cfg.HTTP.Debug; dc.Addr != "" {
		dbg, err := debugserver.Listen(d.debugOptions())
		if err != nil {
			return err
		}
		defer dbg.Close()
		d.log.Info("debug server listening", "addr", dbg.Addr(), "metrics", dc.Prometheus.Enabled)
	}
	hc := d.cfg.HTTP
	network := hc.Net
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		// A socket left by a crash would make Listen fail.
		os.Remove(hc.Addr)
	}
	ln, err := net.Listen(network, hc.Addr)
	if err != nil {
		return fmt.Errorf("http.addr: %w", err)
	}
	var conns connTracker
	srv := &http.Server{
		ConnState:         conns.track,
		Handler:           d.server,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	if hc.TLS.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(hc.TLS.Certificate, hc.TLS.Key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	stopAgent := d.startAgent(ctx, ln.Addr().String())
	// Deferred: runs after Shutdown has drained the requests.
	defer stopAgent()

	purge := d.cfg.Storage.UploadPurging
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	if purge.Enabled {
		go d.server.RunUploadPurger(bg, purge.Age, purge.Interval, purge.DryRun)
	}
	d.mu.Lock()
	d.background = bg
	if d.cfg.Referrers.FallbackTags {
		// Referrers pushed while fallback tags were off get theirs.
		go d.server.RunFallbackBackfill(bg, fallbackBackfillRetry)
	}
	d.mu.Unlock()

	if hcfg := d.cfg.Health.StorageDriver; hcfg.Enabled {
		go d.health.Run(bg, debugserver.Check{
			Name: "storagedriver_" + d.cfg.Storage.Driver, Interval: hcfg.Interval, Threshold: hcfg.Threshold,
			Run: storageCheck(d.server.Driver()),
		})
	}
	if d.metrics != nil {
		go d.watchMaintenance(bg, d.metrics.Maintenance(), d.metrics.GCReports())
	}

	if d.notify != nil {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		d.notify.Start(notify.Source{Addr: net.JoinHostPort(host, port), InstanceID: d.nodeID})
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.log.Info("listening", "addr", ln.Addr().String(), "network", network, "tls", hc.TLS.Certificate != "",
		"read_only", d.server.RefusesWrites(), "storage", d.cfg.Storage.Driver, "node", d.nodeID)
	if ready != nil {
		ready(ln.Addr().String())
	}
	var stopErr error
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case stopErr = <-d.fatal:
		d.log.Error("stopping", "err", stopErr)
	}
	drain := hc.DrainTimeout
	if drain <= 0 {
		// http.draintimeout: 0 asks for Distribution's immediate close.
		d.log.Info("shutting down without draining (http.draintimeout is 0)")
		srv.Close()
		return stopErr
	}
	d.log.Info("shutting down: draining requests in flight", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	// Go's Shutdown waits up to 5 s for connections that were opened but
	// never sent a request; nothing is in flight on them, so close them
	// as the drain goes on.
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			conns.closeUnused()
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return errors.Join(stopErr, fmt.Errorf("drain timed out after %s; closed remaining connections", drain))
	}
	return stopErr
}

// connTracker knows which connections have not sent a request yet.
type connTracker struct{ m sync.Map }

func (c *connTracker) track(conn net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		c.m.Delete(conn)
		return
	}
	c.m.Store(conn, st)
}

func (c *connTracker) closeUnused() {
	c.m.Range(func(k, v any) bool {
		if v == http.StateNew {
			k.(net.Conn).Close()
		}
		return true
	})
}
