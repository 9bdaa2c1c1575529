package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"regctl/pkg/configsrc"
	"regctl/pkg/pidfile"
	"regctl/pkg/serve"
)

// The tests run this test binary as the daemon: linked as "regctl" and
// started as `regctl serve CONFIG`, it runs a real pkg/serve daemon, so
// the pid checks see exactly what they see for regctl.
const (
	daemonEnv     = "REGCTL_SERVICE_TEST_DAEMON"
	ignoreTermEnv = "REGCTL_SERVICE_TEST_IGNORE_TERM"
)

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) != "" {
		os.Exit(fakeRegctl(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeRegctl is `regctl serve CONFIG`, cut down to what the service
// verbs rely on: the pid file, the listener, SIGHUP and SIGTERM.
func fakeRegctl(args []string) int {
	if len(args) != 2 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: regctl serve CONFIG")
		return 2
	}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	src, err := configsrc.Find(args[1], "", false, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	d, err := serve.NewDaemon(src.Config, src.Path, log, level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	remove, err := pidfile.Write(src.Path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	defer remove()
	stopOn := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if os.Getenv(ignoreTermEnv) != "" {
		// A daemon stuck past its drain: only SIGKILL ends it.
		signal.Ignore(syscall.SIGTERM)
		stopOn = stopOn[:1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopOn...)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := d.Reload(); err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}()
	if err := d.Run(ctx, nil); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

// testService is a Service on a temp data_dir whose daemon is this test
// binary under the name regctl.
func testService(t *testing.T, extraEnv ...string) *Service {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "bin", "regctl")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "registry"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Service{
		Config:     filepath.Join(data, "registry", "config.yml"),
		PIDFile:    filepath.Join(data, "registry", "service.pid"),
		Log:        filepath.Join(data, "log", "registry", "current"),
		Executable: link,
		Env:        append(os.Environ(), append([]string{daemonEnv + "=1", "REGCTL_CLUSTER_HEARTBEAT=100ms"}, extraEnv...)...),
	}
	t.Cleanup(func() {
		// Never leave a daemon behind, whatever failed.
		if st, err := s.State(); err == nil && st.Daemon != nil {
			syscall.Kill(st.Daemon.PID, syscall.SIGKILL)
		}
	})
	return s
}

// config is a config.yml for the fake daemon.
type config struct {
	Addr, Root, Level, Drain string
}

func (c config) write(t *testing.T, path string) {
	t.Helper()
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Drain == "" {
		c.Drain = "5s"
	}
	y := fmt.Sprintf("version: 0.1\nlog:\n  level: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\n"+
		"  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: %s\n  draintimeout: %s\n", c.Level, c.Root, c.Addr, c.Drain)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
