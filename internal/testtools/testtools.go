// Package testtools finds and runs the real programs regctl's tests use
// (CNCF Distribution, the versitygw S3 server, the OCI conformance suite)
// instead of mocks.
//
// Tools are installed into <repo>/.tools/bin by scripts/install-tools.sh.
// A test that needs a missing tool is skipped with an install hint, or fails
// when the environment variable CI holds a true value (see InCI), so that CI
// never passes by silently skipping.
package testtools

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// InstallHint is the command that installs every test tool.
const InstallHint = "scripts/install-tools.sh"

// Tool returns the absolute path of the test tool name: first
// <repo>/.tools/bin/<name>, then $PATH. When the tool is missing it calls
// t.Fatalf under CI (see InCI) and t.Skipf otherwise; both messages name
// scripts/install-tools.sh.
func Tool(t testing.TB, name string) string {
	t.Helper()
	local := filepath.Join(RepoRoot(t), ".tools", "bin", name)
	if isExecutable(local) {
		return local
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	SkipOrFail(t, "test tool %q not found in %s or $PATH; run %s", name, filepath.Dir(local), InstallHint)
	return ""
}

// SkipOrFail skips the test, or fails it under CI (see InCI), where every
// test must run: use it when something a test needs is missing.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=%s: failing instead of skipping)", append(args, os.Getenv("CI"))...)
	}
	t.Skipf(format, args...)
}

// InCI reports whether the environment variable CI holds a true value as
// strconv.ParseBool reads it: "1", "t", "true", "TRUE" and "True" all mean
// CI. It is the one rule every test (and scripts, in shell) uses.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// RepoRoot returns the module root: the nearest folder at or above the
// test's working directory that holds a go.mod file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("testtools: %v", err)
	}
	return root
}

func findRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("looking for go.mod: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or any parent folder", wd)
		}
		dir = parent
	}
}

// FreeAddr returns "127.0.0.1:PORT" for a loopback port that was free when
// it was asked for. Another process may take it before the caller binds it;
// StartProcess notices when the port is already taken.
//
// The port is drawn at random below the kernel's ephemeral range
// (ip_local_port_range, 32768 and up by default), where every listener
// on port 0 (httptest servers in other test binaries) and every outgoing
// connection gets its port: those would otherwise take a port between
// FreeAddr and the server's bind. And it never returns one port twice in
// a process, so parallel tests do not race for it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePortMin+rand.IntN(freePortMax-freePortMin)))
		if _, seen := handedOut.LoadOrStore(addr, true); seen {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		if err := l.Close(); err != nil {
			t.Fatalf("testtools: releasing %s: %v", addr, err)
		}
		return addr
	}
	t.Fatalf("testtools: no free loopback port in %d-%d", freePortMin, freePortMax)
	return ""
}

// The ports FreeAddr draws from: above the well-known ones most services
// use, below Linux's default ephemeral range.
const (
	freePortMin = 20000
	freePortMax = 32768
)

// handedOut holds every address FreeAddr returned in this process.
var handedOut sync.Map
