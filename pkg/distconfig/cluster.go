package distconfig

import "time"

// Cluster is regctl.cluster: how a regctl daemon takes part in the
// cluster of nodes serving one storage (heartbeats and the maintenance
// lease under /docker/registry/v2/_regctl). Distribution ignores the
// regctl section, as it ignores every key it does not know.
type Cluster struct {
	// Disabled turns the heartbeat and the lease polling off
	// (regctl.cluster.enabled: false), for a node whose storage
	// credentials cannot write. Maintenance jobs then do not see it.
	Disabled bool
	// Heartbeat is regctl.cluster.heartbeat; 0 for the default.
	Heartbeat time.Duration
}

func (d *decoder) regctl(n *node, path string, c *Config) {
	enabled := true
	d.mapping(n, path, fields{
		"cluster": d.section(fields{
			"enabled":   d.boolean(&enabled),
			"heartbeat": d.duration(&c.Cluster.Heartbeat),
		}),
	})
	c.Cluster.Disabled = !enabled
}
