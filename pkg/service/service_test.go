package service

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"regctl/pkg/pidfile"
)

func TestLifecycle(t *testing.T) {
	s := testService(t)
	root := filepath.Join(filepath.Dir(s.Config), "root")
	cfg := config{Addr: freeAddr(t), Root: root}
	cfg.write(t, s.Config)
	ctx := context.Background()

	res, err := s.Start(ctx, 0)
	if err != nil {
		t.Fatalf("start: %v\n%+v", err, res)
	}
	if res.AlreadyRunning || !res.Managed || res.PID == 0 || res.Addr != cfg.Addr {
		t.Fatalf("start = %+v", res)
	}
	pid := res.PID
	if got := readPID(t, s.PIDFile); got != pid {
		t.Errorf("service.pid = %d, want %d", got, pid)
	}
	if got := readPID(t, pidfile.Path(s.Config)); got != pid {
		t.Errorf("config.yml.pid = %d, want %d", got, pid)
	}

	again, err := s.Start(ctx, 0)
	if err != nil || !again.AlreadyRunning || again.PID != pid {
		t.Errorf("second start = %+v, %v; want already running as %d", again, err, pid)
	}

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.PID != pid || !st.Managed || st.Addr != cfg.Addr || st.Storage != "filesystem" {
		t.Errorf("status = %+v", st)
	}
	if st.StartedAt.IsZero() || time.Since(st.StartedAt) > time.Minute || st.StartedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("started_at = %v, want about now", st.StartedAt)
	}
	if st.Health == nil || !st.Health.Up || st.Health.Status != 200 {
		t.Errorf("health = %+v, want up with 200 (no auth)", st.Health)
	}
	if len(st.Nodes) != 1 || !st.Nodes[0].Self || st.Nodes[0].PID != pid {
		t.Errorf("nodes = %+v, want this daemon's heartbeat", st.Nodes)
	}
	if st.ReadOnly.Config || st.ReadOnly.Maintenance != nil || st.ReadOnly.Daemon == nil || *st.ReadOnly.Daemon {
		t.Errorf("read-only = %+v, want off everywhere", st.ReadOnly)
	}

	// A log-level change reloads: same pid.
	old := readFile(t, s.Config)
	cfg.Level = "debug"
	cfg.write(t, s.Config)
	a, err := s.Apply(ctx, old, ApplyOptions{})
	if err != nil || !a.Reloaded || a.Restarted || a.PID != pid || len(a.NeedsRestart) != 0 {
		t.Fatalf("apply log level = %+v, %v; want a reload of %d", a, err, pid)
	}
	waitLog(t, s.Log, "log level changed")

	// Reload only: a change that needs a restart is reported, and the
	// daemon is only told to reload.
	old = readFile(t, s.Config)
	moved := cfg
	moved.Addr = freeAddr(t)
	moved.write(t, s.Config)
	a, err = s.Apply(ctx, old, ApplyOptions{ReloadOnly: true})
	if err != nil || !a.Reloaded || a.Restarted || a.PID != pid || strings.Join(a.NeedsRestart, ",") != "http.addr" {
		t.Fatalf("apply addr, reload only = %+v, %v; want a reload of %d that needs a restart", a, err, pid)
	}
	waitLog(t, s.Log, "config changes need a restart")
	cfg.write(t, s.Config)

	// A new address restarts it.
	old = readFile(t, s.Config)
	cfg.Addr = freeAddr(t)
	cfg.write(t, s.Config)
	a, err = s.Apply(ctx, old, ApplyOptions{})
	if err != nil || !a.Restarted || a.NewPID == pid || a.NewPID == 0 || strings.Join(a.NeedsRestart, ",") != "http.addr" {
		t.Fatalf("apply addr = %+v, %v; want a restart", a, err)
	}
	if !pidfile.Exited(pid) {
		t.Errorf("old daemon %d still runs", pid)
	}
	pid = a.NewPID
	if st, _ := s.Status(ctx); !st.Running || st.PID != pid || st.Health == nil || !st.Health.Up ||
		!strings.Contains(st.Health.URL, cfg.Addr) {
		t.Errorf("status after restart = %+v", st)
	}

	stop, err := s.Stop(ctx, 0)
	if err != nil || !stop.WasRunning || stop.Killed || stop.PID != pid {
		t.Fatalf("stop = %+v, %v", stop, err)
	}
	if stop.Timeout != 5*time.Second+StopMargin {
		t.Errorf("stop timeout %v, want draintimeout 5s + margin", stop.Timeout)
	}
	for _, f := range []string{s.PIDFile, pidfile.Path(s.Config)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after stop: %v", f, err)
		}
	}
	st, _ = s.Status(ctx)
	if st.Running || st.Health != nil {
		t.Errorf("status after stop = %+v", st)
	}
	stop, err = s.Stop(ctx, 0)
	if err != nil || stop.WasRunning {
		t.Errorf("second stop = %+v, %v; want not running, no error", stop, err)
	}
	// Apply with nothing running does nothing.
	if a, err := s.Apply(ctx, old, ApplyOptions{}); err != nil || a.PID != 0 || a.Reloaded || a.Restarted {
		t.Errorf("apply with no daemon = %+v, %v", a, err)
	}
}

func TestStalePIDFiles(t *testing.T) {
	s := testService(t)
	cfg := config{Addr: freeAddr(t), Root: filepath.Join(filepath.Dir(s.Config), "root")}
	cfg.write(t, s.Config)
	cfgPID := pidfile.Path(s.Config)

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })

	for _, tc := range []struct {
		name, svc, cfg string
		why            []string
	}{
		{"exited", strconv.Itoa(dead.Process.Pid), "", []string{"has exited"}},
		{"reused pid", strconv.Itoa(sleep.Process.Pid), strconv.Itoa(dead.Process.Pid), []string{"another program (sleep)", "has exited"}},
		{"garbage", "not a pid", "", []string{"holds no pid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(s.PIDFile, []byte(tc.svc+"\n"), 0o644)
			os.Remove(cfgPID)
			if tc.cfg != "" {
				os.WriteFile(cfgPID, []byte(tc.cfg+"\n"), 0o644)
			}
			st, err := s.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Running || len(st.Stale) != len(tc.why) {
				t.Fatalf("status = %+v, want not running with %d stale files", st, len(tc.why))
			}
			for i, w := range tc.why {
				if !strings.Contains(st.Stale[i].Why, w) {
					t.Errorf("stale[%d] = %q, want %q", i, st.Stale[i].Why, w)
				}
			}
			stop, err := s.Stop(context.Background(), 0)
			if err != nil || stop.WasRunning || len(stop.RemovedStale) != len(tc.why) {
				t.Fatalf("stop = %+v, %v", stop, err)
			}
			if _, err := os.Stat(s.PIDFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale service.pid kept by stop")
			}
		})
	}

	// Start over a stale file removes it and runs.
	os.WriteFile(s.PIDFile, []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o644)
	res, err := s.Start(context.Background(), 0)
	if err != nil || res.AlreadyRunning || len(res.RemovedStale) != 1 {
		t.Fatalf("start over a stale pid file = %+v, %v", res, err)
	}
	if got := readPID(t, s.PIDFile); got != res.PID {
		t.Errorf("service.pid = %d, want %d", got, res.PID)
	}
	if _, err := s.Stop(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if pidfile.Exited(sleep.Process.Pid) {
		t.Error("sleep was signalled")
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	s := testService(t, ignoreTermEnv+"=1")
	config{Addr: freeAddr(t), Root: filepath.Join(filepath.Dir(s.Config), "root")}.write(t, s.Config)
	res, err := s.Start(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	stop, err := s.Stop(context.Background(), 500*time.Millisecond)
	if err != nil || !stop.Killed || stop.PID != res.PID {
		t.Fatalf("stop = %+v, %v; want a SIGKILL", stop, err)
	}
	if took := time.Since(begin); took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("stop took %v", took)
	}
	// Killed, it could not remove its own pid file: stop did.
	for _, f := range []string{s.PIDFile, pidfile.Path(s.Config)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a kill: %v", f, err)
		}
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("no config", func(t *testing.T) {
		s := testService(t)
		if _, err := s.Start(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "regctl reconfigure") {
			t.Errorf("start without config.yml: %v", err)
		}
	})
	t.Run("daemon exits", func(t *testing.T) {
		s := testService(t)
		// Valid for distconfig, refused by the daemon.
		y := "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: " + freeAddr(t) + "\n"
		os.WriteFile(s.Config, []byte(y), 0o644)
		os.MkdirAll(filepath.Dir(s.Log), 0o755)
		os.WriteFile(s.Log, []byte("an earlier run's line\n"), 0o644)
		_, err := s.Start(context.Background(), 0)
		var se *StartError
		if !errors.As(err, &se) {
			t.Fatalf("start: %v, want a StartError", err)
		}
		if !strings.Contains(se.LogTail, "inmemory") || strings.Contains(se.LogTail, "earlier run") {
			t.Errorf("log tail = %q, want this run's error only", se.LogTail)
		}
		if _, err := os.Stat(s.PIDFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("service.pid left after a failed start: %v", err)
		}
	})
	t.Run("address taken", func(t *testing.T) {
		s := testService(t)
		other := testService(t)
		addr := freeAddr(t)
		config{Addr: addr, Root: filepath.Join(filepath.Dir(other.Config), "root")}.write(t, other.Config)
		if _, err := other.Start(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Stop(context.Background(), 0) })
		config{Addr: addr, Root: filepath.Join(filepath.Dir(s.Config), "root")}.write(t, s.Config)
		if _, err := s.Start(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "already listens") {
			t.Errorf("start on a taken address: %v", err)
		}
	})
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after 5s:\n%s", want, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConcurrentRunsRefused: a second start, stop or restart while one
// is acting is refused rather than racing it for the pid file.
func TestConcurrentRunsRefused(t *testing.T) {
	s := testService(t)
	config{Addr: freeAddr(t), Root: filepath.Join(filepath.Dir(s.Config), "root")}.write(t, s.Config)
	unlock, err := s.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx := context.Background()
	_, errStart := s.Start(ctx, 0)
	_, errStop := s.Stop(ctx, 0)
	_, errRestart := s.Restart(ctx, 0, 0)
	_, errApply := s.Apply(ctx, nil, ApplyOptions{})
	for name, err := range map[string]error{"start": errStart, "stop": errStop, "restart": errRestart, "apply": errApply} {
		if err == nil || !strings.Contains(err.Error(), "another regctl") {
			t.Errorf("%s while locked: %v", name, err)
		}
	}
	if st, _ := s.State(); st.Daemon != nil {
		t.Errorf("a daemon started while locked: %+v", st.Daemon)
	}
}
