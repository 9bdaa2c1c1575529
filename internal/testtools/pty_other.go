//go:build !linux

package testtools

import (
	"os"
	"runtime"
	"testing"
)

// OpenPTY is only implemented on Linux; elsewhere the test is skipped,
// or fails under CI=true.
func OpenPTY(t testing.TB) (pty, tty *os.File) {
	t.Helper()
	SkipOrFail(t, "no pseudo-terminal support for %s in testtools", runtime.GOOS)
	return nil, nil
}
