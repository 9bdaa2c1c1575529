package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"regctl/internal/fsutil"
)

// PIDFilePath is where `regctl serve` records its pid: beside the config
// it serves, named after it (config.yml.pid), so that whoever rewrites
// that config can tell exactly its daemon to reload, even when several
// configs share a folder.
func PIDFilePath(configPath string) string {
	return filepath.Join(filepath.Dir(configPath), filepath.Base(configPath)+".pid")
}

// WritePIDFile records this process as the daemon serving configPath and
// returns a function that removes the record again.
func WritePIDFile(configPath string) (remove func(), err error) {
	path := PIDFilePath(configPath)
	if pid, _ := runningDaemon(path); pid != 0 && pid != os.Getpid() {
		return nil, fmt.Errorf("another regctl serve (pid %d) already serves %s", pid, configPath)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, err
	}
	return func() {
		if pid, _ := readPID(path); pid == os.Getpid() {
			os.Remove(path)
		}
	}, nil
}

// SignalReload sends SIGHUP to the regctl daemon serving configPath, if
// one runs. It returns the pid signalled, or 0 when none runs.
func SignalReload(configPath string) (int, error) {
	pid, err := runningDaemon(PIDFilePath(configPath))
	if pid == 0 || err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return 0, fmt.Errorf("signal regctl serve (pid %d): %w", pid, err)
	}
	return pid, nil
}

// runningDaemon reads a pid file and checks that the process is alive and
// is a regctl serve, so a stale file whose pid was reused by another
// program is never signalled. "serve" in the arguments is not enough:
// CNCF Distribution runs as `registry serve config.yml` on the same hosts,
// and SIGHUP ends it. The program itself must be regctl, by its name
// (argv[0]) or the kernel's name for it (comm).
func runningDaemon(path string) (int, error) {
	pid, err := readPID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, nil // not running
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if !strings.Contains(filepath.Base(args[0]), "regctl") && !strings.Contains(string(comm), "regctl") {
		return 0, nil
	}
	for _, a := range args[1:] {
		if a == "serve" {
			return pid, nil
		}
	}
	return 0, nil
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a pid", path)
	}
	return pid, nil
}
