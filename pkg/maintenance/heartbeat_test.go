package maintenance

import (
	"testing"
	"time"

	"regctl/pkg/distconfig"
)

func TestClusterHeartbeatSources(t *testing.T) {
	t.Setenv(HeartbeatEnv, "")
	if d, err := ClusterHeartbeat(distconfig.Cluster{}); err != nil || d != DefaultHeartbeat {
		t.Errorf("nothing set: %v, %v", d, err)
	}
	if d, err := ClusterHeartbeat(distconfig.Cluster{Heartbeat: 700 * time.Millisecond}); err != nil || d != 700*time.Millisecond {
		t.Errorf("config: %v, %v", d, err)
	}
	t.Setenv(HeartbeatEnv, "300ms")
	if d, err := ClusterHeartbeat(distconfig.Cluster{Heartbeat: 700 * time.Millisecond}); err != nil || d != 300*time.Millisecond {
		t.Errorf("environment over config: %v, %v", d, err)
	}
}
