package integration

import (
	"context"
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
)

// serviceStatus is what `regctl status -o json` prints, in part.
type serviceStatus struct {
	Running  bool   `json:"running"`
	PID      int    `json:"pid"`
	Managed  bool   `json:"managed"`
	Addr     string `json:"addr"`
	Storage  string `json:"storage"`
	ReadOnly struct {
		Config bool  `json:"config"`
		Daemon *bool `json:"daemon"`
	} `json:"read_only"`
	Health *struct {
		Up     bool `json:"up"`
		Status int  `json:"status"`
	} `json:"health"`
	Nodes []struct {
		PID  int    `json:"pid"`
		Addr string `json:"addr"`
		Self bool   `json:"self"`
	} `json:"nodes"`
	Stale []struct {
		Path string `json:"path"`
		Why  string `json:"why"`
	} `json:"stale_pid_files"`
	UptimeSeconds int64 `json:"uptime_seconds"`
}

// serviceEnv is a settings file in a temp dir whose registry listens on
// a free port, with the regctl commands to drive it.
type serviceEnv struct {
	t        *testing.T
	dir      string
	settings string
	env      []string
	addr     string
}

func newServiceEnv(t *testing.T) *serviceEnv {
	t.Helper()
	e := &serviceEnv{t: t, dir: t.TempDir(), env: cleanEnv(), addr: testtools.FreeAddr(t)}
	e.settings = filepath.Join(e.dir, "regctl.toml")
	e.writeSettings("")
	e.mustRun(0, "reconfigure")
	t.Cleanup(func() {
		// Whatever failed, no daemon outlives the test.
		e.regctl("stop", "--timeout", "5s")
		for _, f := range []string{e.servicePID(), pidfile.Path(e.config())} {
			if b, err := os.ReadFile(f); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && isRegctl(pid) {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return e
}

func isRegctl(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "regctl")
}

func (e *serviceEnv) writeSettings(extraRegistry string) {
	e.t.Helper()
	src := "data_dir = \"data\"\nexternal_url = \"https://gitlab.example.com\"\n[registry]\nregistry_http_addr = \"" + e.addr + "\"\n" + extraRegistry
	if err := os.WriteFile(e.settings, []byte(src), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// config, servicePID and logFile are where reconfigure and start put
// them under data_dir.
func (e *serviceEnv) config() string {
	return filepath.Join(e.dir, "data", "registry", "config.yml")
}

func (e *serviceEnv) servicePID() string {
	return filepath.Join(e.dir, "data", "registry", "service.pid")
}

func (e *serviceEnv) logFile() string {
	return filepath.Join(e.dir, "data", "log", "registry", "current")
}

func (e *serviceEnv) regctl(args ...string) (string, int) {
	e.t.Helper()
	return runRegctl(e.t, e.dir, e.env, append([]string{"--settings", e.settings}, args...)...)
}

func (e *serviceEnv) mustRun(code int, args ...string) string {
	e.t.Helper()
	out, got := e.regctl(args...)
	if got != code {
		e.t.Fatalf("regctl %s: exit %d, want %d\n%s", strings.Join(args, " "), got, code, out)
	}
	return out
}

func (e *serviceEnv) status(wantCode int) serviceStatus {
	e.t.Helper()
	// stdout only: the JSON, without anything on stderr.
	cmd := exec.Command(regctlBinary(e.t), "--settings", e.settings, "status", "-o", "json")
	cmd.Dir, cmd.Env = e.dir, e.env
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	if code != wantCode {
		e.t.Fatalf("status: exit %d, want %d\n%s", code, wantCode, out)
	}
	var st serviceStatus
	if err := json.Unmarshal(out, &st); err != nil {
		e.t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return st
}

// v2 is the status of GET /v2/ on addr, 0 when nothing answers.
func v2(addr string) int {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/v2/")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServiceLifecycle drives the rendered config through start, status,
// a reload, a restart, tail and stop, all as the regctl program.
func TestServiceLifecycle(t *testing.T) {
	e := newServiceEnv(t)
	if st := e.status(3); st.Running || st.Addr != e.addr {
		t.Fatalf("status before start = %+v", st)
	}

	out := e.mustRun(0, "start")
	mustContainAll(t, "start", out, "started", e.addr, e.logFile())
	pid := readPIDFile(t, e.servicePID())
	if got := readPIDFile(t, pidfile.Path(e.config())); got != pid {
		t.Errorf("config.yml.pid = %d, service.pid = %d", got, pid)
	}
	if out := e.mustRun(0, "start"); !strings.Contains(out, "already running (pid "+strconv.Itoa(pid)) {
		t.Errorf("second start:\n%s", out)
	}
	// The daemon is detached: its own session, not this test's process
	// group, so a Ctrl-C in the shell that ran start never reaches it.
	if sid := sessionOf(t, pid); sid != pid {
		t.Errorf("daemon session %d, want its own (%d)", sid, pid)
	}

	st := e.status(0)
	if !st.Running || st.PID != pid || !st.Managed || st.Addr != e.addr || st.Storage != "filesystem" {
		t.Errorf("status = %+v", st)
	}
	if st.Health == nil || !st.Health.Up || st.Health.Status != http.StatusUnauthorized {
		t.Errorf("health = %+v, want up with 401 (token auth)", st.Health)
	}
	if st.ReadOnly.Config || st.ReadOnly.Daemon == nil || *st.ReadOnly.Daemon {
		t.Errorf("read-only = %+v", st.ReadOnly)
	}
	if len(st.Nodes) != 1 || !st.Nodes[0].Self || st.Nodes[0].PID != pid || st.Nodes[0].Addr != e.addr {
		t.Errorf("nodes = %+v, want this daemon's heartbeat", st.Nodes)
	}
	out = e.mustRun(0, "status")
	mustContainAll(t, "status", out, "running: pid "+strconv.Itoa(pid), "uptime", e.addr, "health", "up")

	// A log level change reloads: the same pid, the new level in force.
	e.writeSettings("log_level = \"debug\"\n")
	var rec struct {
		Reload struct {
			PID          int      `json:"pid"`
			Managed      bool     `json:"managed"`
			NeedsRestart []string `json:"needs_restart"`
			Restarted    bool     `json:"restarted"`
			NewPID       int      `json:"new_pid"`
			Error        string   `json:"error"`
		} `json:"reload"`
	}
	out = e.mustRun(0, "reconfigure", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("reconfigure -o json: %v\n%s", err, out)
	}
	if rec.Reload.PID != pid || rec.Reload.Restarted || len(rec.Reload.NeedsRestart) != 0 || rec.Reload.Error != "" {
		t.Fatalf("reconfigure after a log level change: %+v, want a reload of %d", rec.Reload, pid)
	}
	waitFor(t, 5*time.Second, "the log level change in the log", func() bool {
		b, _ := os.ReadFile(e.logFile())
		return strings.Contains(string(b), "log level changed")
	})
	if st := e.status(0); st.PID != pid {
		t.Errorf("pid after reload %d, want %d", st.PID, pid)
	}

	// A new listen address cannot be reloaded: reconfigure restarts it.
	oldAddr := e.addr
	e.addr = testtools.FreeAddr(t)
	e.writeSettings("log_level = \"debug\"\n")
	out = e.mustRun(0, "reconfigure")
	mustContainAll(t, "reconfigure", out, "restarted", "http.addr")
	st = e.status(0)
	if st.PID == pid || st.PID == 0 || st.Addr != e.addr {
		t.Fatalf("status after restart = %+v, want a new pid on %s", st, e.addr)
	}
	if !pidfile.Exited(pid) {
		t.Errorf("old daemon %d still runs", pid)
	}
	pid = st.PID
	if got := v2(e.addr); got != http.StatusUnauthorized {
		t.Errorf("GET /v2/ on the new address: %d, want 401", got)
	}
	if got := v2(oldAddr); got != 0 {
		t.Errorf("the old address still answers: %d", got)
	}

	// tail prints the log and follows it until Ctrl-C.
	out = tailFor(t, e, time.Second, "-n", "20")
	mustContainAll(t, "tail", out, "msg=listening", "addr="+e.addr)

	begin := time.Now()
	out = e.mustRun(0, "stop")
	took := time.Since(begin)
	mustContainAll(t, "stop", out, "stopped pid "+strconv.Itoa(pid))
	if took > 10*time.Second {
		t.Errorf("stop took %v, far past an idle drain", took)
	}
	if !pidfile.Exited(pid) {
		t.Errorf("daemon %d still runs after stop", pid)
	}
	for _, f := range []string{e.servicePID(), pidfile.Path(e.config())} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after stop: %v", f, err)
		}
	}
	if st := e.status(3); st.Running || st.Health != nil {
		t.Errorf("status after stop = %+v", st)
	}
	if out := e.mustRun(3, "status"); !strings.Contains(out, "not running") {
		t.Errorf("status after stop:\n%s", out)
	}
	e.mustRun(0, "stop") // stopping a stopped registry is fine
}

// TestServiceStalePIDFiles: pid files left by a crash, or naming a pid
// the kernel gave to another program, never count as running, are never
// signalled, and are cleared by start.
func TestServiceStalePIDFiles(t *testing.T) {
	e := newServiceEnv(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	writePIDFile(t, e.servicePID(), dead.Process.Pid)
	writePIDFile(t, pidfile.Path(e.config()), sleep.Process.Pid)

	st := e.status(3)
	if st.Running || len(st.Stale) != 2 {
		t.Fatalf("status with stale pid files = %+v", st)
	}
	mustContainAll(t, "stale reasons", st.Stale[0].Why+"\n"+st.Stale[1].Why, "has exited", "another program (sleep)")
	// reconfigure finds no daemon to signal.
	if out := e.mustRun(0, "reconfigure"); !strings.Contains(out, "none running") {
		t.Errorf("reconfigure with stale pid files:\n%s", out)
	}

	out := e.mustRun(0, "start")
	mustContainAll(t, "start", out, "removed "+e.servicePID(), "started")
	st = e.status(0)
	if !st.Running || st.PID == sleep.Process.Pid || st.PID != readPIDFile(t, e.servicePID()) || len(st.Stale) != 0 {
		t.Errorf("status after start = %+v", st)
	}
	if pidfile.Exited(sleep.Process.Pid) {
		t.Error("sleep was signalled")
	}

	// A crash (SIGKILL) leaves both files naming a dead pid: status says
	// not running, and start starts again.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the daemon to die", func() bool { return pidfile.Exited(st.PID) })
	if st2 := e.status(3); st2.Running || len(st2.Stale) != 2 {
		t.Errorf("status after a crash = %+v", st2)
	}
	e.mustRun(0, "start")
	if st2 := e.status(0); !st2.Running || st2.PID == st.PID {
		t.Errorf("status after restart from a crash = %+v", st2)
	}
	e.mustRun(0, "stop")
}

// tailFor runs `regctl tail ARGS`, interrupts it after d as Ctrl-C
// would, and returns what it printed. It must exit 0 promptly.
func tailFor(t *testing.T, e *serviceEnv, d time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, regctlBinary(t), append([]string{"--settings", e.settings, "tail"}, args...)...)
	cmd.Dir, cmd.Env = e.dir, e.env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	// Interrupted by the context, Wait reports the context's error even
	// for a clean exit: the exit code is what counts.
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("tail after Ctrl-C: %v, want exit 0\n%s", err, out)
	}
	return string(out)
}

// sessionOf is pid's session id, /proc/<pid>/stat field 6.
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, err := strconv.Atoi(fields[6-3])
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func mustContainAll(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
