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

// Referrers is regctl.referrers: how the referrers API meets roots that
// CNCF Distribution also serves.
type Referrers struct {
	// FallbackTags keeps the referrers tag schema's index (the tag
	// <alg>-<hex> of each subject) up to date on every referrer push and
	// delete (regctl.referrers.fallbacktags), so that Distribution and its
	// clients see referrers pushed through regctl.
	FallbackTags bool
}

// regctl decodes regctl's own section.
func (d *decoder) regctl(n *node, path string, c *Config) {
	enabled := true
	d.mapping(n, path, fields{
		"cluster": d.section(fields{
			"enabled":   d.boolean(&enabled),
			"heartbeat": d.duration(&c.Cluster.Heartbeat),
		}),
		"referrers": d.section(fields{
			"fallbacktags": d.boolean(&c.Referrers.FallbackTags),
		}),
	})
	c.Cluster.Disabled = !enabled
}
