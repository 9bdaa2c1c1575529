// Package pidfile is the pid file of `regctl serve`: config.yml.pid,
// beside the config it serves, written by the daemon and read by whoever
// must find that daemon (reconfigure's reload, start, stop, status). A
// pid is trusted only while it is a running regctl serve, so a stale
// file whose pid the kernel gave to another program is never signalled.
package pidfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"regctl/internal/fsutil"
)

// Path is where `regctl serve` records its pid: beside the config it
// serves, named after it (config.yml.pid), so that whoever rewrites that
// config can tell exactly its daemon to reload, even when several
// configs share a folder.
func Path(configPath string) string {
	return filepath.Join(filepath.Dir(configPath), filepath.Base(configPath)+".pid")
}

// Write records this process as the daemon serving configPath and
// returns a function that removes the record again.
func Write(configPath string) (remove func(), err error) {
	path := Path(configPath)
	if pid, _ := running(path); pid != 0 && pid != os.Getpid() {
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

// ErrNoPID is wrapped when a pid file holds no pid.
var ErrNoPID = errors.New("not a pid")

// Info is what a pid file says and whether it still holds.
type Info struct {
	Path string `json:"path"`
	// PID is the pid recorded; 0 when there is no file.
	PID int `json:"pid,omitempty"`
	// Live is true when PID is a running regctl serve.
	Live bool `json:"live"`
	// Program is what runs under PID now when it is not a regctl serve
	// (a reused pid); "" when nothing runs there.
	Program string `json:"program,omitempty"`
	// Args is the live daemon's command line.
	Args []string `json:"args,omitempty"`
}

// Stale reports a pid file that names no running regctl serve: left by
// a crash, or naming a pid the kernel has since given to another program.
func (i Info) Stale() bool { return i.PID != 0 && !i.Live }

// Inspect reads a pid file and checks that its process is a running
// regctl serve. A missing file is no error (PID 0); an unreadable or
// garbled one is (ErrNoPID when it holds no pid).
func Inspect(path string) (Info, error) {
	info := Info{Path: path}
	pid, err := readPID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return info, nil
	}
	if err != nil {
		return info, err
	}
	info.PID = pid
	info.Args, info.Program, info.Live = regctlServe(pid)
	return info, nil
}

// running is the pid of the live regctl serve a pid file names, 0 when
// there is none.
func running(path string) (int, error) {
	info, err := Inspect(path)
	if err != nil || !info.Live {
		return 0, err
	}
	return info.PID, nil
}

// regctlServe tells whether pid is a running regctl serve. "serve" in
// the arguments is not enough: CNCF Distribution runs as `registry serve
// config.yml` on the same hosts, and SIGHUP ends it. The program itself
// must be regctl, by its name (argv[0]) or the kernel's name for it
// (comm). A zombie never counts. When pid is not a regctl serve, program
// names what runs there instead ("" for nothing).
func regctlServe(pid int) (args []string, program string, ok bool) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || Exited(pid) {
		return nil, "", false // not running
	}
	commB, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	comm := strings.TrimSpace(string(commB))
	args = strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	program = comm
	if args[0] != "" {
		program = filepath.Base(args[0])
	}
	if !strings.Contains(filepath.Base(args[0]), "regctl") && !strings.Contains(comm, "regctl") {
		return nil, program, false
	}
	for _, a := range args[1:] {
		if a == "serve" {
			return args, program, true
		}
	}
	return nil, program, false
}

// Exited reports whether pid no longer runs: there is no such process,
// or it is a zombie (it has exited and waits for its parent, which for a
// daemon started by `regctl start` is init, to reap it).
func Exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and
	// may itself hold spaces or parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	st := stat[i+2]
	return st == 'Z' || st == 'X'
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: %w", path, ErrNoPID)
	}
	return pid, nil
}
