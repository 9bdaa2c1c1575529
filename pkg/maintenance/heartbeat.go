package maintenance

import (
	"os"
	"time"

	"regctl/pkg/distconfig"
)

// ClusterHeartbeat is the heartbeat interval of the daemons serving a
// config, as they use it and as a job judging which nodes are gone must
// use it too: HeartbeatEnv (an override for tests), else
// regctl.cluster.heartbeat, else DefaultHeartbeat.
func ClusterHeartbeat(c distconfig.Cluster) (time.Duration, error) {
	if os.Getenv(HeartbeatEnv) == "" && c.Heartbeat > 0 {
		return c.Heartbeat, nil
	}
	return HeartbeatFromEnv()
}
