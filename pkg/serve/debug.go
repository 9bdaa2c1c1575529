package serve

import (
	"context"
	"errors"
	"time"

	"regctl/pkg/debugserver"
	"regctl/pkg/gcreport"
	"regctl/pkg/metrics"
	"regctl/pkg/notify"
	"regctl/pkg/storage"
)

// Health is the daemon's health checks, as /debug/health reports them.
func (d *Daemon) Health() *debugserver.Health { return d.health }

// debugOptions is what the debug listener serves.
func (d *Daemon) debugOptions() debugserver.Options {
	o := debugserver.Options{
		Addr:   d.cfg.HTTP.Debug.Addr,
		Health: d.health,
		Vars:   d.vars,
		Log:    d.log,
	}
	if d.metrics != nil {
		o.Metrics, o.MetricsPath = d.metrics.Handler(), d.cfg.HTTP.Debug.Prometheus.Path
	}
	return o
}

// gcReportEvery is how often the daemon reads the last GC report
// besides at start and when a maintenance window ends: dry runs take no
// lease, so no window tells of them.
var gcReportEvery = time.Minute

// watchMaintenance feeds the maintenance (garbage collection) figures:
// the agent switches maintenance on and off, this polls it every second.
// The last GC run's figures come from the report the collector leaves in
// the storage (gcreport), read at start, when a window ends and every
// gcReportEvery.
func (d *Daemon) watchMaintenance(ctx context.Context, mt *metrics.Maintenance, gr *metrics.GCReports) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastErr string
	readReports := func() {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		l, err := gcreport.Read(rctx, d.server.Driver())
		gr.Set(l)
		switch {
		case err != nil && err.Error() != lastErr && ctx.Err() == nil:
			d.log.Warn("reading the last garbage collection's report for the metrics", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
	readReports()
	wasOn, lastRead := false, time.Now()
	for {
		_, on := d.server.Maintenance()
		mt.Observe(on, time.Now())
		if (wasOn && !on) || time.Since(lastRead) >= gcReportEvery {
			readReports()
			lastRead = time.Now()
		}
		wasOn = on
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) vars() any {
	v := debugserver.RegistryVars{Node: d.nodeID, ReadOnly: d.server.RefusesWrites()}
	v.Notifications.Endpoints = []notify.Stats{}
	if d.notify != nil {
		v.Notifications.Endpoints = d.notify.Stats()
	}
	return v
}

// storageCheck is the health check of the storage: the driver's own
// (S3 lists one key, the filesystem looks at its root folder), or a
// Stat of the root, where a root that does not exist yet is fine.
func storageCheck(driver storage.Driver) func(context.Context) error {
	if c, ok := storage.As[storage.Checker](driver); ok {
		return c.Check
	}
	return func(ctx context.Context) error {
		_, err := driver.Stat(ctx, "/")
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
}
