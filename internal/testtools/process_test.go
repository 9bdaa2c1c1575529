package testtools

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the server that the process tests start: with
// TESTTOOLS_HELPER set it runs helperMain instead of the tests.
const helperEnv = "TESTTOOLS_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// helperMain is the helper server. Modes:
//
//	serve         listen on addr, exit 0 on SIGTERM
//	ignore-term   listen on addr, ignore SIGTERM
//	fail          print to stderr and exit 3 without listening
//	never-listen  run without listening
func helperMain(mode, addr string) int {
	switch mode {
	case "serve", "ignore-term":
		term := make(chan os.Signal, 1)
		if mode == "serve" {
			signal.Notify(term, syscall.SIGTERM)
		} else {
			signal.Ignore(syscall.SIGTERM)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		fmt.Println("helper listening on", addr)
		<-term
		_ = l.Close()
		fmt.Println("helper got SIGTERM")
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "helper: failing on purpose")
		return 3
	case "never-listen":
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 1
}

// helperCmd returns a command running this test binary as the helper server.
func helperCmd(t *testing.T, mode, addr string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", addr)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// setDuration sets *v to d for the rest of the test.
func setDuration(t *testing.T, v *time.Duration, d time.Duration) {
	old := *v
	*v = d
	t.Cleanup(func() { *v = old })
}

func TestStartCmdStopsWithSIGTERM(t *testing.T) {
	addr := FreeAddr(t)
	p := StartCmd(t, addr, helperCmd(t, "serve", addr))
	if !canDial(addr) {
		t.Fatalf("%s not accepting connections after StartCmd", addr)
	}
	if !strings.Contains(p.Output(), "helper listening on "+addr) {
		t.Errorf("Output() = %q, want the listening line", p.Output())
	}
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if !strings.Contains(p.Output(), "helper got SIGTERM") {
		t.Errorf("Output() = %q, want the SIGTERM line", p.Output())
	}
	p.Stop() // a second Stop, and the cleanup's, are no-ops
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	setDuration(t, &killDelay, 300*time.Millisecond)
	addr := FreeAddr(t)
	p := StartCmd(t, addr, helperCmd(t, "ignore-term", addr))
	start := time.Now()
	p.Stop()
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit = %v, want killed by SIGKILL", err)
	}
	if d := time.Since(start); d < killDelay {
		t.Errorf("killed after %v, before the %v grace period", d, killDelay)
	}
}

func TestTryStartCmdReportsEarlyExit(t *testing.T) {
	addr := FreeAddr(t)
	p, err := TryStartCmd(t, addr, helperCmd(t, "fail", addr))
	if err == nil {
		t.Fatal("no error for a process that exits without listening")
	}
	for _, want := range []string{"exit status 3", "helper: failing on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if p == nil || !p.Exited() {
		t.Fatalf("want the exited Process along with the error, got %v", p)
	}
}

func TestTryStartCmdTimesOut(t *testing.T) {
	setDuration(t, &startTimeout, 500*time.Millisecond)
	addr := FreeAddr(t)
	p, err := TryStartCmd(t, addr, helperCmd(t, "never-listen", addr))
	if err == nil || !strings.Contains(err.Error(), "did not accept connections") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	if !p.Exited() {
		t.Errorf("process still running after the start timeout")
	}
}

func TestTryStartCmdRefusesTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	p, err := TryStartCmd(t, addr, helperCmd(t, "serve", addr))
	if err == nil || !strings.Contains(err.Error(), "already accepts connections") {
		t.Fatalf("error = %v, want the port reported as taken", err)
	}
	if p != nil {
		t.Errorf("a process was started on a taken port")
	}
}

func TestTryStartProcessMissingBinary(t *testing.T) {
	addr := FreeAddr(t)
	if _, err := TryStartProcess(t, addr, "/nonexistent/regctl-server"); err == nil {
		t.Fatal("no error for a binary that does not exist")
	}
}
