package integration

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/pidfile"
)

// TestServeGracefulShutdown sends SIGTERM while a blob download is in
// flight: within http.draintimeout the download completes and regctl
// exits 0; past it, regctl closes the connection and exits. Both times the
// pid file goes.
func TestServeGracefulShutdown(t *testing.T) {
	t.Run("download completes within the drain timeout", func(t *testing.T) {
		p, addr, cfgPath, d := serveWithBlob(t, "10s", 16<<20)
		pidFile := pidfile.Path(cfgPath)
		if _, err := os.Stat(pidFile); err != nil {
			t.Fatalf("no pid file while serving: %v", err)
		}
		pull := startSlowPull(t, addr, "drain/blob", d)
		pull.readSlowly(16, 5*time.Millisecond)

		start := time.Now()
		if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// New connections are refused at once while the download drains.
		waitFor(t, 3*time.Second, "the listener to close", func() bool {
			pull.readSlowly(1, 5*time.Millisecond)
			c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		if p.Exited() {
			t.Fatalf("regctl exited while a download was in flight:\n%s", p.Output())
		}
		pull.readSlowly(20, 10*time.Millisecond)
		got, err := pull.finish()
		if err != nil || got != d {
			t.Fatalf("download across SIGTERM: %s (%v), want %s", got, err, d)
		}
		select {
		case <-p.Done():
		case <-time.After(8 * time.Second):
			t.Fatalf("regctl still running 8s after the download completed:\n%s", p.Output())
		}
		elapsed := time.Since(start)
		if err := p.Wait(); err != nil {
			t.Errorf("exit: %v, want status 0:\n%s", err, p.Output())
		}
		if elapsed >= 10*time.Second {
			t.Errorf("exited %v after SIGTERM: not before the 10s drain timeout", elapsed)
		}
		if !strings.Contains(p.Output(), "draining requests in flight") {
			t.Errorf("log lacks the drain:\n%s", p.Output())
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pid file left behind: %v", err)
		}
	})

	t.Run("drain timeout cuts the download", func(t *testing.T) {
		p, addr, cfgPath, d := serveWithBlob(t, "1s", 32<<20)
		pull := startSlowPull(t, addr, "drain/blob", d)
		pull.readSlowly(8, 5*time.Millisecond)

		start := time.Now()
		if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// Read nothing more: the download cannot finish within 1s.
		select {
		case <-p.Done():
		case <-time.After(6 * time.Second):
			t.Fatalf("regctl still running 6s after SIGTERM with draintimeout 1s:\n%s", p.Output())
		}
		elapsed := time.Since(start)
		if elapsed < 900*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("exited %v after SIGTERM, want about 1s", elapsed)
		}
		// Killed by a signal would mean testtools had to step in.
		var ee *exec.ExitError
		if err := p.Wait(); errors.As(err, &ee) && !ee.Exited() {
			t.Errorf("exit: %v, want regctl to exit by itself", err)
		}
		if !strings.Contains(p.Output(), "drain timed out after 1s") {
			t.Errorf("output does not say the drain timed out:\n%s", p.Output())
		}
		if _, err := pull.finish(); err == nil {
			t.Errorf("the download completed; it should have been cut at the drain timeout")
		}
		if _, err := os.Stat(pidfile.Path(cfgPath)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pid file left behind: %v", err)
		}
	})
}

// serveWithBlob starts regctl serve with the given http.draintimeout and
// uploads size random bytes to drain/blob.
func serveWithBlob(t *testing.T, drain string, size int) (p *testtools.Process, addr, cfgPath, digest string) {
	t.Helper()
	dir := t.TempDir()
	addr = testtools.FreeAddr(t)
	cfgPath = filepath.Join(dir, "config.yml")
	serveCfg{Addr: addr, Root: filepath.Join(dir, "root"), Level: "info", Drain: drain}.write(t, cfgPath)
	p = startServeT(t, cfgPath, addr)
	digest = pushBlob(t, addr, "drain/blob", randomBytes(t, size))
	return p, addr, cfgPath, digest
}
