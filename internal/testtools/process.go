package testtools

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Timings of StartProcess and of the cleanup. Variables so that this
// package's own tests can shorten them; other packages should not change them.
var (
	// startTimeout bounds the wait for the address to accept connections.
	startTimeout = 20 * time.Second
	// killDelay is how long a process may take to exit after SIGTERM before
	// it gets SIGKILL.
	killDelay = 5 * time.Second
	// dialInterval is the pause between two connection attempts.
	dialInterval = 50 * time.Millisecond
)

// Process is a long-lived server started by StartProcess. It is stopped by
// the test's cleanup; Stop stops it earlier.
type Process struct {
	name string
	addr string
	cmd  *exec.Cmd
	out  SyncBuffer

	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done is closed

	stopOnce sync.Once
	stopped  atomic.Bool // Stop signalled the process
}

// Output returns everything the process has written to stdout and stderr
// so far.
func (p *Process) Output() string { return p.out.String() }

// Addr returns the address the process was expected to listen on.
func (p *Process) Addr() string { return p.addr }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit error: nil for
// exit status 0, an *exec.ExitError otherwise.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// Stop ends the process (SIGTERM, then SIGKILL after a few seconds) and
// waits for it to exit. It may be called more than once; the test's cleanup
// calls it too.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		if p.Exited() {
			return
		}
		p.stopped.Store(true)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(killDelay):
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// StartProcess runs the server bin with args, captures its combined output,
// and waits until addr accepts TCP connections. If the process exits first,
// or the address is not ready within about 20 seconds, the test fails with
// the process's output. The process is stopped in t.Cleanup and its output
// is logged when the test has failed.
func StartProcess(t testing.TB, addr string, bin string, args ...string) *Process {
	t.Helper()
	return StartCmd(t, addr, exec.Command(bin, args...))
}

// TryStartProcess is StartProcess returning an error instead of failing the
// test. The returned Process is non-nil whenever the program was started,
// also with an error (it has then been stopped); its cleanup is registered
// either way.
func TryStartProcess(t testing.TB, addr string, bin string, args ...string) (*Process, error) {
	t.Helper()
	return TryStartCmd(t, addr, exec.Command(bin, args...))
}

// StartCmd is StartProcess for a prepared command, for callers that set
// its environment or working directory. Stdout and Stderr are replaced.
func StartCmd(t testing.TB, addr string, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := TryStartCmd(t, addr, cmd)
	if err != nil {
		t.Fatalf("testtools: %v", err)
	}
	return p
}

// TryStartCmd is StartCmd returning an error instead of failing the test.
func TryStartCmd(t testing.TB, addr string, cmd *exec.Cmd) (*Process, error) {
	t.Helper()
	name := filepath.Base(cmd.Path)
	if canDial(addr) {
		return nil, fmt.Errorf("%s: %s already accepts connections before the process started (port taken by another process)", name, addr)
	}
	p := &Process{name: name, addr: addr, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	// A grandchild holding the output pipe must not keep Wait blocked.
	cmd.WaitDelay = killDelay
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.cleanup(t) })

	deadline := time.Now().Add(startTimeout)
	for {
		if canDial(addr) {
			return p, nil
		}
		select {
		case <-p.done:
			return p, fmt.Errorf("%s exited (%s) before %s accepted connections; output:\n%s",
				p.describe(), exitText(p.waitErr), addr, p.Output())
		case <-time.After(dialInterval):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return p, fmt.Errorf("%s: %s did not accept connections within %v; output:\n%s",
				p.describe(), addr, startTimeout, p.Output())
		}
	}
}

// cleanup stops the process and logs its output when the test failed, or a
// note when the process ended by itself while the test was running.
func (p *Process) cleanup(t testing.TB) {
	exitedEarly := p.Exited() && !p.stopped.Load()
	p.Stop()
	if exitedEarly {
		t.Logf("%s had exited by itself during the test: %s", p.describe(), exitText(p.waitErr))
	}
	if t.Failed() {
		t.Logf("output of %s:\n%s", p.describe(), p.Output())
	}
}

func (p *Process) describe() string {
	return fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// canDial reports whether addr accepts a TCP connection now.
func canDial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return false
	}
	// Dialling a loopback port nobody listens on can connect to itself
	// when the kernel picks that same port as the source (TCP
	// simultaneous open): that is no server.
	self := c.LocalAddr().String() == c.RemoteAddr().String()
	_ = c.Close()
	return !self
}

// StartOnFreePort starts the server that cmd builds for a free loopback
// address, as StartCmd does. FreeAddr's port is free when it is picked,
// but a test running in parallel may take it before the server binds it:
// then it tries again on another port, a few times.
func StartOnFreePort(t testing.TB, cmd func(addr string) *exec.Cmd) (*Process, string) {
	t.Helper()
	var errs []string
	for range 3 {
		addr := FreeAddr(t)
		p, err := TryStartCmd(t, addr, cmd(addr))
		if err == nil {
			return p, addr
		}
		taken := strings.Contains(err.Error(), "port taken") ||
			(p != nil && strings.Contains(p.Output(), "address already in use"))
		if !taken {
			t.Fatalf("testtools: %v", err)
		}
		errs = append(errs, err.Error())
	}
	t.Fatalf("testtools: no free port after 3 tries:\n%s", strings.Join(errs, "\n"))
	return nil, ""
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and for reads
// while they go on: a process's stdout and stderr, or a logger's output
// that a test reads while a server writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
