package readonly

import (
	"context"
	"log/slog"
	"time"

	"regctl/pkg/configsrc"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// OpenStorage opens the storage of a config.yml (configArg, else the one
// rendered from the settings at settingsPath) and returns the heartbeat
// interval of the daemons on it (maintenance.ClusterHeartbeat).
func OpenStorage(configArg, settingsPath string, log *slog.Logger) (storage.Driver, time.Duration, error) {
	cfg, _, err := configsrc.Load(configArg, settingsPath, log)
	if err != nil {
		return nil, 0, err
	}
	return openStorage(cfg.Storage.Driver, cfg.Storage.Params, cfg.Cluster)
}

func openStorage(driver string, params map[string]any, c distconfig.Cluster) (storage.Driver, time.Duration, error) {
	drv, err := storage.Open(context.Background(), driver, params)
	if err != nil {
		return nil, 0, err
	}
	interval, err := maintenance.ClusterHeartbeat(c)
	return drv, interval, err
}

// ClusterOptions are EnableCluster's.
type ClusterOptions struct {
	// TTL is when the lease ends by itself: nothing renews it.
	TTL time.Duration
	// Reason is shown in the daemons' 405 answers and in status.
	Reason string
	// AckTimeout bounds the wait for the daemons to switch.
	AckTimeout time.Duration
}

// Enabled is what EnableCluster did.
type Enabled struct {
	Lease maintenance.LeaseInfo
	// Wait is how far the daemons had switched when the wait ended.
	Wait maintenance.WaitResult
}

// EnableCluster takes the maintenance lease on the storage by hand, so
// that every regctl daemon on it refuses writes within a heartbeat, and
// waits for each live one to acknowledge. The lease outlives the call:
// nothing renews it, and it lasts until DisableCluster or its TTL. When
// the lease cannot be taken, the result is nil; when the wait fails
// (some daemon did not switch in time), the result says how far it got,
// the error says why, and the lease stays.
func EnableCluster(ctx context.Context, drv storage.Driver, interval time.Duration, o ClusterOptions) (*Enabled, error) {
	lease, err := maintenance.Acquire(ctx, drv, maintenance.Holder(maintenance.ManualCommand), o.Reason, o.TTL)
	if err != nil {
		return nil, err
	}
	// Nothing renews a lease taken by hand once this returns: it lasts
	// until disable --cluster, or until it expires.
	defer lease.Keep()
	wctx, cancel := context.WithTimeout(ctx, o.AckTimeout)
	defer cancel()
	res, werr := maintenance.WaitForReadOnly(wctx, drv, lease, interval, nil)
	return &Enabled{Lease: lease.Info(), Wait: res}, werr
}

// DisableCluster releases a lease taken with EnableCluster (a job's too
// with force) and reads the storage's state afterwards. released is nil
// when no lease was held.
func DisableCluster(ctx context.Context, drv storage.Driver, interval time.Duration, force bool) (released *maintenance.LeaseInfo, after ClusterState, err error) {
	released, err = maintenance.ReleaseManual(ctx, drv, force)
	if err != nil {
		return nil, ClusterState{}, err
	}
	return released, ReadCluster(ctx, drv, interval), nil
}

// ClusterState is the storage's side of read-only: the maintenance lease
// and the nodes' heartbeats.
type ClusterState struct {
	Lease *maintenance.LeaseInfo   `json:"lease"`
	Nodes []maintenance.NodeStatus `json:"nodes"`
	Error string                   `json:"error,omitempty"`
}

// ReadCluster reads the lease and the nodes of a storage; problems are
// reported in Error, not returned.
func ReadCluster(ctx context.Context, drv storage.Driver, interval time.Duration) ClusterState {
	cl := ClusterState{Nodes: []maintenance.NodeStatus{}}
	lease, err := maintenance.Current(ctx, drv)
	if err != nil {
		cl.Error = err.Error()
		return cl
	}
	cl.Lease = lease
	nodes, err := maintenance.Nodes(ctx, drv, interval)
	if err != nil {
		cl.Error = err.Error()
		return cl
	}
	if nodes != nil {
		cl.Nodes = nodes
	}
	return cl
}
