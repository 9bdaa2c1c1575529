package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// Status is the daemon as `regctl status` shows it.
type Status struct {
	Running bool `json:"running"`
	// PID, Managed and StartedAt describe the running daemon.
	PID       int       `json:"pid,omitempty"`
	Managed   bool      `json:"managed"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Uptime is since StartedAt.
	Uptime        time.Duration `json:"-"`
	UptimeSeconds int64         `json:"uptime_seconds,omitempty"`
	Config        string        `json:"config"`
	// ConfigError is set when config.yml cannot be read; the fields that
	// come from it are then empty.
	ConfigError string `json:"config_error,omitempty"`
	Log         string `json:"log"`
	// Addr is where the daemon listens: from its heartbeat when it has
	// one, else config.yml's http.addr.
	Addr     string    `json:"addr,omitempty"`
	TLS      bool      `json:"tls"`
	Storage  string    `json:"storage,omitempty"`
	ReadOnly ReadOnly  `json:"read_only"`
	Health   *Health   `json:"health,omitempty"`
	Nodes    []NodeRow `json:"nodes"`
	// NodesError says why the storage's heartbeats could not be read.
	NodesError string         `json:"nodes_error,omitempty"`
	Stale      []StalePIDFile `json:"stale_pid_files,omitempty"`
	// Notifications is each endpoint's backlog.
	Notifications []NotificationBacklog `json:"notifications"`
}

// ReadOnly is the read-only state from each of its sources.
type ReadOnly struct {
	// Config is storage.maintenance.readonly.enabled in config.yml.
	Config bool `json:"config"`
	// Maintenance is the live maintenance lease on the storage (a
	// garbage collection, a migration), which makes every daemon on it
	// refuse writes.
	Maintenance      *maintenance.LeaseInfo `json:"maintenance,omitempty"`
	MaintenanceError string                 `json:"maintenance_error,omitempty"`
	// Daemon is what the running daemon reports in its heartbeat, with
	// its reason; nil when it has no heartbeat.
	Daemon *bool  `json:"daemon,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Health is the answer to GET /v2/ on the daemon's address.
type Health struct {
	URL string `json:"url"`
	// Up is set for 200, and for 401 (token or htpasswd auth asking
	// for credentials is a registry at work).
	Up     bool   `json:"up"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// NodeRow is one daemon's heartbeat in the storage.
type NodeRow struct {
	maintenance.NodeStatus
	// Self marks this host's daemon.
	Self bool `json:"self"`
}

// Status gathers the daemon's state. Only an unreadable pid file is an
// error; what cannot be learnt (a storage out of reach, say) is reported
// in the result.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	st, err := s.State()
	if err != nil {
		return nil, err
	}
	res := &Status{Config: s.Config, Log: s.Log, Stale: st.Stale, Nodes: []NodeRow{}, Notifications: []NotificationBacklog{}}
	if d := st.Daemon; d != nil {
		res.Running, res.PID, res.Managed, res.StartedAt = true, d.PID, d.Managed, d.StartedAt
		if !d.StartedAt.IsZero() {
			res.Uptime = time.Since(d.StartedAt).Truncate(time.Second)
			res.UptimeSeconds = int64(res.Uptime / time.Second)
		}
	}
	cfg, err := s.loadConfig()
	if err != nil {
		res.ConfigError = err.Error()
		return res, nil
	}
	res.Addr, res.TLS, res.Storage = cfg.HTTP.Addr, cfg.HTTP.TLS.Certificate != "", cfg.Storage.Driver
	res.ReadOnly.Config = cfg.Storage.ReadOnly

	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s.storageState(sctx, cfg, res)
	if res.Running {
		res.Health = probe(sctx, cfg.HTTP, res.Addr)
	}
	res.Notifications = s.notificationBacklogs(sctx, cfg, res.Running)
	return res, nil
}

// storageState reads the maintenance lease and the heartbeats. Opening
// a filesystem storage has no side effect; an S3 one checks the bucket.
func (s *Service) storageState(ctx context.Context, cfg *distconfig.Config, res *Status) {
	drv, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		res.NodesError = err.Error()
		res.ReadOnly.MaintenanceError = err.Error()
		return
	}
	if lease, err := maintenance.Current(ctx, drv); err != nil {
		res.ReadOnly.MaintenanceError = err.Error()
	} else {
		res.ReadOnly.Maintenance = lease
	}
	interval, err := maintenance.HeartbeatFromEnv()
	if err != nil {
		interval = maintenance.DefaultHeartbeat
	}
	nodes, err := maintenance.Nodes(ctx, drv, interval)
	if err != nil {
		res.NodesError = err.Error()
		return
	}
	host, _ := os.Hostname()
	for _, n := range nodes {
		self := res.Running && n.PID == res.PID && n.Host == host && !n.Gone
		res.Nodes = append(res.Nodes, NodeRow{NodeStatus: n, Self: self})
		if self {
			// The listener's own address: exact where http.addr is a
			// wildcard or a port 0.
			res.Addr = n.Addr
			ro := n.ReadOnly
			res.ReadOnly.Daemon, res.ReadOnly.Reason = &ro, n.ReadOnlyReason
		}
	}
}

// openStorage opens the driver, giving up with ctx: storage.Open's S3 check
// has a timeout of its own, but status should not wait for it.
func openStorage(ctx context.Context, st distconfig.Storage) (storage.Driver, error) {
	type opened struct {
		d   storage.Driver
		err error
	}
	c := make(chan opened, 1)
	go func() {
		d, err := storage.Open(context.Background(), st.Driver, st.Params)
		c <- opened{d, err}
	}()
	select {
	case o := <-c:
		return o.d, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("storage.%s: %w", st.Driver, ctx.Err())
	}
}

// probe sends GET /v2/ to the daemon.
func probe(ctx context.Context, h distconfig.HTTP, listenAddr string) *Health {
	hc := h
	hc.Addr = listenAddr
	network, addr := dialTarget(hc)
	scheme := "http"
	tr := &http.Transport{DisableKeepAlives: true}
	if h.TLS.Certificate != "" {
		scheme = "https"
		// A liveness probe on the local listener: the address is an IP
		// or loopback, which the certificate's names rarely cover.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	url := scheme + "://" + addr + "/v2/"
	if network == "unix" {
		url = scheme + "://unix/v2/"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
	}
	res := &Health{URL: url}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp.Body.Close()
	res.Status = resp.StatusCode
	res.Up = resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
	if !res.Up {
		res.Error = resp.Status
	}
	return res
}
