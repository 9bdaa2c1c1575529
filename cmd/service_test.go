package cmd

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The service verbs with no daemon running; starting real daemons is
// covered by pkg/service and integration/service_test.go.

func TestStatusNotRunning(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"127.0.0.1:15999\"\n")
	r := mustCode(t, exitNotRunning, "status", "--settings", settings)
	mustContain(t, "status", r.stdout, "not running", "127.0.0.1:15999", "filesystem",
		filepath.Join(dir, "data", "log", "registry", "current"))
	if r.stderr != "" {
		t.Errorf("status wrote to stderr: %q", r.stderr)
	}

	// A pid file left by a crash is reported, and not running stays 3.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "data", "registry", "service.pid")
	writeFile(t, pidFile, strconv.Itoa(dead.Process.Pid)+"\n", 0o644)
	r = mustCode(t, exitNotRunning, "status", "--settings", settings, "-o", "json")
	var st struct {
		Running bool   `json:"running"`
		Addr    string `json:"addr"`
		Storage string `json:"storage"`
		Stale   []struct {
			Path string `json:"path"`
			PID  int    `json:"pid"`
			Why  string `json:"why"`
		} `json:"stale_pid_files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if st.Running || st.Addr != "127.0.0.1:15999" || st.Storage != "filesystem" ||
		len(st.Stale) != 1 || st.Stale[0].Path != pidFile || st.Stale[0].PID != dead.Process.Pid {
		t.Errorf("status -o json = %+v", st)
	}

	// stop removes it and is no error.
	r = mustCode(t, 0, "stop", "--settings", settings)
	mustContain(t, "stop", r.stdout, "not running", "removed "+pidFile)
	mustCode(t, exitNotRunning, "status", "--settings", settings)
}

func TestStartWithoutConfig(t *testing.T) {
	t.Parallel()
	_, settings := newSettings(t, "data_dir = \"data\"\n")
	r := mustCode(t, 1, "start", "--settings", settings)
	mustContain(t, "start", r.stderr, "config.yml does not exist", "regctl reconfigure")
	r = mustCode(t, exitNotRunning, "status", "--settings", settings)
	mustContain(t, "status", r.stdout, "not running", "does not exist")
}

func TestTailNoFollow(t *testing.T) {
	t.Parallel()
	dir, settings := newSettings(t, "data_dir = \"data\"\n")
	mustCode(t, 1, "tail", "--settings", settings, "--follow=false")
	writeFile(t, filepath.Join(dir, "data", "log", "registry", "current"), "one\ntwo\nthree\n", 0o640)
	r := mustCode(t, 0, "tail", "--settings", settings, "-n", "2", "--follow=false")
	if r.stdout != "two\nthree\n" {
		t.Errorf("tail -n 2 printed %q", r.stdout)
	}
	mustCode(t, 2, "tail", "--settings", settings, "-n", "-1")
}
