// Package integration runs regctl as a program against real clients and
// the OCI conformance suite.
package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"regctl/internal/testtools"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildOut  []byte
)

// regctlBinary builds regctl once per test run.
func regctlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regctl-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "regctl")
		cmd := exec.Command("go", "build", "-o", buildBin, ".")
		cmd.Dir = testtools.RepoRoot(t)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build regctl: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

// serveConfig writes a minimal Distribution-format config for regctl serve.
func serveConfig(t *testing.T, addr string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " + filepath.Join(dir, "root") +
		"\n  delete:\n    enabled: true\n" + extra + "http:\n  addr: " + addr + "\n"
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServe runs `regctl serve CONFIG` on addr until the test ends.
func startServe(t *testing.T, config, addr string) *testtools.Process {
	t.Helper()
	return testtools.StartProcess(t, addr, regctlBinary(t), "serve", config)
}
