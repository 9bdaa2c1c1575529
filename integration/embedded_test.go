package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/testtools"
	"regctl/pkg/settings"
)

// cleanEnv is this process's environment without the variables that
// change which config regctl serve picks.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") && !strings.HasPrefix(kv, "REGCTL_SETTINGS=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runRegctl runs the regctl binary to completion (at most 30 s) and
// returns its combined output and exit code.
func runRegctl(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, regctlBinary(t), args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("regctl %v: %v\n%s", args, err, out)
	return "", -1
}

// TestServeMissingExplicitSettings: a settings file named with --settings
// or REGCTL_SETTINGS must exist; serve never falls back to the embedded
// default then.
func TestServeMissingExplicitSettings(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nowhere", "regctl.toml")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", cleanEnv(), []string{"--settings", missing, "serve"}},
		{"environment", cleanEnv("REGCTL_SETTINGS=" + missing), []string{"serve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runRegctl(t, dir, tc.env, tc.args...)
			if code != 2 || !strings.Contains(out, missing) || !strings.Contains(out, "settings file not found") {
				t.Errorf("exit %d, want 2 naming %s:\n%s", code, missing, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "regctl-data")); err == nil {
				t.Errorf("the embedded default ran: regctl-data was created")
			}
		})
	}
}

// TestServeEmbeddedDefault runs `regctl serve` with no CONFIG and no
// settings file: the embedded default, on the address REGISTRY_HTTP_ADDR
// names, storing under ./regctl-data, warning that there is no auth.
func TestServeEmbeddedDefault(t *testing.T) {
	if _, err := os.Stat(settings.DefaultSettingsPath); err == nil {
		t.Skipf("%s exists on this machine: serve would use it", settings.DefaultSettingsPath)
	}
	dir := t.TempDir()
	addr := testtools.FreeAddr(t)
	cmd := exec.Command(regctlBinary(t), "serve")
	cmd.Dir = dir
	cmd.Env = cleanEnv("REGISTRY_HTTP_ADDR=" + addr)
	p, err := testtools.TryStartCmd(t, addr, cmd)
	if err != nil {
		t.Fatalf("embedded default did not listen on REGISTRY_HTTP_ADDR %s: %v", addr, err)
	}
	t.Cleanup(closeClientConns)
	out := p.Output()
	for _, want := range []string{"NO authentication", addr} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, addr+"/embedded/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	pulled, err := remote.Image(ref)
	if err == nil {
		err = verifyImage(pulled)
	}
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := img.Digest()
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	repo := filepath.Join(dir, "regctl-data", "docker", "registry", "v2", "repositories", "embedded", "app")
	if _, err := os.Stat(filepath.Join(repo, "_manifests", "tags", "v1", "current", "link")); err != nil {
		t.Errorf("the push is not under ./regctl-data: %v", err)
	}
	// The embedded default has no config file, so no pid file either.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("working folder holds %v, want only regctl-data", ents)
	}
}
