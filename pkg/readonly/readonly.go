// Package readonly is `regctl registry-readonly`: the registry's
// read-only maintenance mode, either configured (the settings key,
// rendered and rolled out to the running daemon, which reloads it live)
// or taken on a whole storage by hand with the maintenance lease, which
// every regctl daemon on that storage follows within a heartbeat.
package readonly

import (
	"context"
	"log/slog"

	"regctl/pkg/configsrc"
	"regctl/pkg/maintenance"
	"regctl/pkg/reconfigure"
	"regctl/pkg/rollout"
	"regctl/pkg/service"
	"regctl/pkg/settings"
)

// SetResult is what Set did.
type SetResult struct {
	ReadOnly bool
	// SettingsChanged is false when the settings already said so.
	SettingsChanged bool
	Render          *reconfigure.Result
	// Daemon is how the running daemon took the change; its Error does
	// not fail Set.
	Daemon *service.ApplyResult
}

// Set turns the configured read-only mode on or off: it sets the
// settings key (settings.SetReadOnly, one line), renders the settings
// and reloads the daemon (rollout.Run with ReloadOnly), which switches
// the mode without a restart. Registry-readonly never restarts a daemon,
// not even for other edits still waiting to be rendered: those are
// reported in Daemon.NeedsRestart, as before.
func Set(ctx context.Context, l *settings.Loaded, on bool) (*SetResult, error) {
	updated, changed, err := settings.SetReadOnly(l, on)
	if err != nil {
		return nil, err
	}
	r, err := rollout.Run(ctx, updated, rollout.Options{Apply: service.ApplyOptions{ReloadOnly: true}})
	if err != nil {
		return nil, err
	}
	return &SetResult{ReadOnly: on, SettingsChanged: changed, Render: r.Render, Daemon: r.Daemon}, nil
}

// Status is the read-only state from both sources: the settings (and
// whether config.yml agrees) and the storage.
type Status struct {
	reconfigure.ReadOnlyState
	Cluster ClusterState `json:"cluster"`
}

// ReadStatus reads the settings' read-only state and the storage's lease
// and heartbeats. What cannot be read on the storage is reported in
// Cluster.Error.
func ReadStatus(ctx context.Context, l *settings.Loaded, log *slog.Logger) (*Status, error) {
	st, err := reconfigure.ReadOnlyStatus(l)
	if err != nil {
		return nil, err
	}
	out := &Status{ReadOnlyState: st}
	cfg, _, err := configsrc.Rendered(l, log)
	if err != nil {
		out.Cluster = ClusterState{Nodes: []maintenance.NodeStatus{}, Error: err.Error()}
		return out, nil
	}
	drv, interval, err := openStorage(cfg.Storage.Driver, cfg.Storage.Params, cfg.Cluster)
	if err != nil {
		out.Cluster = ClusterState{Nodes: []maintenance.NodeStatus{}, Error: err.Error()}
		return out, nil
	}
	out.Cluster = ReadCluster(ctx, drv, interval)
	return out, nil
}
