package service

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"regctl/pkg/debugserver"
	"regctl/pkg/distconfig"
	"regctl/pkg/notify"
)

// NotificationBacklog is one notification endpoint's queue as `regctl
// status` shows it.
type NotificationBacklog struct {
	Name     string `json:"name"`
	URL      string `json:"url"` // without credentials or query
	Disabled bool   `json:"disabled"`
	Queue    string `json:"queue"`
	// Pending is the undelivered events in the queue on disk, read from
	// the folder, so it is known with the daemon stopped too.
	Pending int    `json:"pending"`
	Error   string `json:"error,omitempty"`
	// Live holds the running daemon's counters, from its debug server's
	// /debug/vars, when it has one.
	Live *notify.Stats `json:"live,omitempty"`
}

// notificationBacklogs reads each endpoint's queue folder, and the
// running daemon's counters when http.debug.addr is set.
func (s *Service) notificationBacklogs(ctx context.Context, cfg *distconfig.Config, running bool) []NotificationBacklog {
	out := []NotificationBacklog{}
	if len(cfg.Notifications.Endpoints) == 0 {
		return out
	}
	dir := notify.QueueRoot(cfg, s.Config)
	var live map[string]notify.Stats
	if running && cfg.HTTP.Debug.Addr != "" {
		live = liveNotifications(ctx, cfg.HTTP.Debug.Addr)
	}
	for _, ep := range cfg.Notifications.Endpoints {
		b := NotificationBacklog{Name: ep.Name, URL: notify.RedactURL(ep.URL), Disabled: ep.Disabled, Queue: notify.QueueDir(dir, ep.Name)}
		n, err := notify.Backlog(b.Queue)
		if err != nil {
			b.Error = err.Error()
		}
		b.Pending = n
		if st, ok := live[ep.Name]; ok {
			b.Live = &st
		}
		out = append(out, b)
	}
	return out
}

// liveNotifications asks the debug server for the endpoints' counters;
// nil when it does not answer.
func liveNotifications(ctx context.Context, debugAddr string) map[string]notify.Stats {
	host, port, err := net.SplitHostPort(debugAddr)
	if err != nil {
		return nil
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/debug/vars", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var vars struct {
		Registry debugserver.RegistryVars `json:"registry"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&vars) != nil {
		return nil
	}
	out := map[string]notify.Stats{}
	for _, st := range vars.Registry.Notifications.Endpoints {
		out[st.Name] = st
	}
	return out
}
