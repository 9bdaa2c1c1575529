package rollout

import (
	"os"
	"path/filepath"
	"testing"

	"regctl/pkg/settings"
)

// A dry run renders nothing and touches no daemon; a run writes the
// files and, with no daemon, reports none running.
func TestRunWithoutADaemon(t *testing.T) {
	dir := t.TempDir()
	settingsPath := filepath.Join(dir, "regctl.toml")
	if err := os.WriteFile(settingsPath, []byte("data_dir = \"data\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := settings.Load(settingsPath)
	if err != nil {
		t.Fatal(err)
	}
	config := l.Resolve().ConfigYML
	res, err := Run(t.Context(), l, Options{DryRun: true})
	if err != nil || res.Daemon != nil || !res.Render.DryRun || !res.Render.Changed() {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Fatalf("a dry run wrote %s: %v", config, err)
	}
	res, err = Run(t.Context(), l, Options{})
	if err != nil || res.Daemon == nil || res.Daemon.PID != 0 || res.Daemon.Error != "" || res.Daemon.Config != config {
		t.Fatalf("run = %+v (daemon %+v), %v", res, res.Daemon, err)
	}
	if _, err := os.Stat(config); err != nil {
		t.Fatalf("config.yml not rendered: %v", err)
	}
	d, err := ReloadOnly(t.Context(), l)
	if err != nil || d.PID != 0 {
		t.Fatalf("ReloadOnly = %+v, %v", d, err)
	}
}
