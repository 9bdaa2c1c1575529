package integration

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/pidfile"
	"regctl/pkg/service"
)

// The reload path of `regctl registry-readonly enable|disable`,
// `regctl reconfigure` and the storage cutover is service.Apply on the
// rendered config.yml: it reads the pid file beside that config and sends
// SIGHUP to the regctl serve it names. These tests drive Apply against
// real regctl serve processes, and the command end to end.

// applyTo is service.Apply on a config no `regctl start` manages.
func applyTo(t *testing.T, cfgPath string, old []byte) (*service.ApplyResult, error) {
	t.Helper()
	svc := &service.Service{Config: cfgPath, PIDFile: filepath.Join(filepath.Dir(cfgPath), "service.pid")}
	return svc.Apply(t.Context(), old, service.ApplyOptions{})
}

// TestServePIDFileAndSignalReload: the pid file sits beside the config,
// names the daemon, and Apply delivers SIGHUP to it.
func TestServePIDFileAndSignalReload(t *testing.T) {
	dir := t.TempDir()
	addr := testtools.FreeAddr(t)
	cfgPath := filepath.Join(dir, "config.yml")
	cfg := serveCfg{Addr: addr, Root: filepath.Join(dir, "root")}
	cfg.write(t, cfgPath)
	p := startServeT(t, cfgPath, addr)

	pidFile := pidfile.Path(cfgPath)
	if pidFile != cfgPath+".pid" {
		t.Errorf("pidfile.Path = %s, want beside the config", pidFile)
	}
	if got := readPIDFile(t, pidFile); got != p.Pid() {
		t.Fatalf("pid file says %d, daemon is %d", got, p.Pid())
	}

	old, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadOnly = true
	cfg.write(t, cfgPath)
	a, err := applyTo(t, cfgPath, old)
	if err != nil || a.PID != p.Pid() || !a.Reloaded || a.Managed || len(a.NeedsRestart) != 0 {
		t.Fatalf("Apply = %+v, %v; want a reload of %d", a, err, p.Pid())
	}
	waitFor(t, 3*time.Second, "read-only after Apply", func() bool {
		resp, _ := do(t, http.MethodPost, addr, "/v2/pid/app/blobs/uploads/", nil, nil)
		return resp.StatusCode == http.StatusMethodNotAllowed
	})
	if p.Exited() {
		t.Fatalf("daemon exited on SIGHUP:\n%s", p.Output())
	}

	// A second daemon on the same config refuses to start.
	addr2 := testtools.FreeAddr(t)
	cmd := exec.Command(regctlBinary(t), "serve", cfgPath)
	cmd.Env = cleanEnv("REGISTRY_HTTP_ADDR=" + addr2)
	if _, err := testtools.TryStartCmd(t, addr2, cmd); err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Errorf("second regctl serve on the same config: %v, want a refusal", err)
	}
	if got := readPIDFile(t, pidFile); got != p.Pid() {
		t.Errorf("the refused daemon replaced the pid file: %d", got)
	}
}

// TestSignalReloadIgnoresOtherProcesses: a pid file whose process is gone,
// or whose pid now belongs to another program, is never signalled (SIGHUP
// ends most programs), and regctl serve starts over it.
func TestSignalReloadIgnoresOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yml")
	pidFile := pidfile.Path(cfgPath)

	// A process that has exited.
	dead := exec.Command(regctlBinary(t), "--version")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writePIDFile(t, pidFile, dead.Process.Pid)
	if a, err := applyTo(t, cfgPath, nil); a.PID != 0 || a.Reloaded || err != nil {
		t.Errorf("stale pid file: Apply = %+v, %v; want nothing done", a, err)
	}

	// Programs that are not regctl serve. Distribution's `registry serve`
	// runs beside regctl on registry hosts and has "serve" in its command
	// line too; SIGHUP would end either.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	distCfg := filepath.Join(dir, "distribution.yml")
	daddr := testtools.FreeAddr(t)
	if err := os.WriteFile(distCfg, []byte("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "+
		filepath.Join(dir, "dist")+"\nhttp:\n  addr: "+daddr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dist := testtools.StartDistribution(t, distCfg, daddr)
	for name, pid := range map[string]int{"sleep": sleep.Process.Pid, "Distribution's registry serve": dist.Pid()} {
		writePIDFile(t, pidFile, pid)
		if a, err := applyTo(t, cfgPath, nil); a.PID != 0 || a.Reloaded || err != nil {
			t.Errorf("pid file naming %s: Apply = %+v, %v; want nothing done", name, a, err)
		}
	}
	// The marker is our own SIGTERM: the kernel delivers a pending SIGHUP
	// (1) before it (15), so a program that Apply signalled dies of SIGHUP
	// (neither handles it), however late its delivery.
	sleep.Process.Signal(syscall.SIGTERM)
	if sig := killedBy(sleep.Wait()); sig != syscall.SIGTERM {
		t.Errorf("sleep ended by %v, not by the marker SIGTERM: it was signalled", sig)
	}
	dist.Stop()
	if sig := killedBy(dist.Wait()); sig == syscall.SIGHUP {
		t.Errorf("Distribution's registry was signalled: it died of SIGHUP\n%s", dist.Output())
	}

	// regctl serve starts over a pid file naming another program and
	// records itself.
	addr := testtools.FreeAddr(t)
	serveCfg{Addr: addr, Root: filepath.Join(dir, "root")}.write(t, cfgPath)
	p := startServeT(t, cfgPath, addr)
	if got := readPIDFile(t, pidFile); got != p.Pid() {
		t.Errorf("pid file says %d after start, want %d", got, p.Pid())
	}
	closeClientConns()
	p.Stop()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after stop: %v", err)
	}

	// And over a stale one.
	writePIDFile(t, pidFile, dead.Process.Pid)
	p = startServeT(t, cfgPath, addr)
	if got := readPIDFile(t, pidFile); got != p.Pid() {
		t.Errorf("pid file says %d after start over a stale one, want %d", got, p.Pid())
	}
}

// TestReadonlyCommandSignalsServe is the whole omnibus-style loop:
// reconfigure renders config.yml (with GitLab token auth), regctl serve
// runs it, `regctl token issue` mints a GitLab-format token, and
// `regctl registry-readonly enable|disable` flips the running daemon
// live, with no restart.
func TestReadonlyCommandSignalsServe(t *testing.T) {
	dir := t.TempDir()
	addr := testtools.FreeAddr(t)
	settings := filepath.Join(dir, "regctl.toml")
	src := "data_dir = \"data\"\nexternal_url = \"https://gitlab.example.com\"\n[registry]\nregistry_http_addr = \"" + addr + "\"\n"
	if err := os.WriteFile(settings, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cleanEnv()
	if out, code := runRegctl(t, dir, env, "--settings", settings, "reconfigure"); code != 0 {
		t.Fatalf("reconfigure: exit %d\n%s", code, out)
	}
	rendered := filepath.Join(dir, "data", "registry", "config.yml")
	p := startServeT(t, rendered, addr)

	tok, code := runRegctl(t, dir, env, "--settings", settings, "token", "issue", "--scope", "repository:pid/app:pull,push")
	if code != 0 {
		t.Fatalf("token issue: exit %d\n%s", code, tok)
	}
	bearer := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(tok)}
	post := func(h map[string]string) (*http.Response, []byte) {
		return do(t, http.MethodPost, addr, "/v2/pid/app/blobs/uploads/", nil, h)
	}

	// Token auth is on: no token, 401 with GitLab's realm.
	resp, _ := post(nil)
	if resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="https://gitlab.example.com/jwt/auth"`) {
		t.Fatalf("POST without token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, body := post(bearer); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with token: %d %s", resp.StatusCode, body)
	}

	out, code := runRegctl(t, dir, env, "--settings", settings, "-o", "json", "registry-readonly", "enable")
	if code != 0 {
		t.Fatalf("registry-readonly enable: exit %d\n%s", code, out)
	}
	var res struct {
		ReadOnly bool `json:"read_only"`
		Reload   struct {
			PID   int    `json:"pid"`
			Error string `json:"error"`
		} `json:"reload"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, out)
	}
	if !res.ReadOnly || res.Reload.PID != p.Pid() || res.Reload.Error != "" {
		t.Errorf("registry-readonly enable = %+v, want pid %d signalled", res, p.Pid())
	}
	waitFor(t, 5*time.Second, "read-only after registry-readonly enable", func() bool {
		resp, body := post(bearer)
		return resp.StatusCode == http.StatusMethodNotAllowed && strings.Contains(string(body), "read-only")
	})

	if out, code := runRegctl(t, dir, env, "--settings", settings, "registry-readonly", "disable"); code != 0 {
		t.Fatalf("registry-readonly disable: exit %d\n%s", code, out)
	}
	waitFor(t, 5*time.Second, "writes after registry-readonly disable", func() bool {
		resp, _ := post(bearer)
		return resp.StatusCode == http.StatusAccepted
	})
}

func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %q is not a pid", path, b)
	}
	return pid
}

func writePIDFile(t *testing.T, path string, pid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// killedBy is the signal that ended a process, given its Wait error; 0
// when it exited by itself.
func killedBy(err error) syscall.Signal {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}
