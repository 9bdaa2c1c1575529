package migrate

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"regctl/pkg/maintenance"
)

// The cutover judges the daemons with the heartbeat they use: the
// config's regctl.cluster.heartbeat, which the environment overrides.
func TestCutoverHeartbeatFromConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, extra string) string {
		p := filepath.Join(dir, name)
		y := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + dir + "\n" + extra
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withBeat := write("beat.yml", "regctl:\n  cluster:\n    heartbeat: 700ms\n")
	plain := write("plain.yml", "")

	t.Setenv(maintenance.HeartbeatEnv, "")
	for _, tc := range []struct {
		config string
		env    string
		want   time.Duration
	}{
		{withBeat, "", 700 * time.Millisecond},
		{plain, "", maintenance.DefaultHeartbeat},
		{withBeat, "300ms", 300 * time.Millisecond},
		{plain, "400ms", 400 * time.Millisecond},
	} {
		t.Setenv(maintenance.HeartbeatEnv, tc.env)
		got, err := configHeartbeat(tc.config, discard())
		if err != nil || got != tc.want {
			t.Errorf("%s with %s=%q: %v, %v; want %s", filepath.Base(tc.config), maintenance.HeartbeatEnv, tc.env, got, err, tc.want)
		}
	}
	t.Setenv(maintenance.HeartbeatEnv, "")
	if _, err := configHeartbeat(filepath.Join(dir, "missing.yml"), discard()); err == nil {
		t.Error("a missing config gave a heartbeat")
	}
}
