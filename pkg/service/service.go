// Package service runs `regctl serve` as a background service, the way
// gitlab-ctl runs GitLab's registry under runit: start, stop, restart,
// status and tail, a pid file and a log file under data_dir, and the
// choice between a reload and a restart when reconfigure changes the
// config.
//
// Two pid files are involved. config.yml.pid is written by every
// `regctl serve` (pkg/serve) and names the daemon serving that config,
// however it was started. service.pid, beside it, is written by Start
// and marks the daemon as this service's: only such a daemon is
// restarted by reconfigure, since restarting one that systemd or a
// terminal runs would take it away from its supervisor.
package service

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"regctl/internal/fsutil"
	"regctl/pkg/serve"
	"regctl/pkg/settings"
)

// Service is the registry daemon of one settings file.
type Service struct {
	// Config is the config.yml the daemon serves (absolute).
	Config string
	// PIDFile is service.pid, written by Start.
	PIDFile string
	// Log is where the daemon's output is appended, as omnibus keeps
	// /var/log/gitlab/registry/current.
	Log string
	// Executable is the regctl binary Start runs; os.Executable() when
	// empty.
	Executable string
	// Env is the daemon's environment; os.Environ() when nil.
	Env []string
}

// New is the service of a settings file's resolved paths:
// data_dir/registry/config.yml, data_dir/registry/service.pid and
// data_dir/log/registry/current.
func New(p settings.Paths) *Service {
	return &Service{
		Config:  p.ConfigYML,
		PIDFile: filepath.Join(p.RegistryDir, "service.pid"),
		Log:     filepath.Join(p.DataDir, "log", "registry", "current"),
	}
}

// Daemon is a running regctl serve of the service's config.
type Daemon struct {
	PID int `json:"pid"`
	// Managed is true when Start started it (service.pid names it), false
	// for a `regctl serve` run in a terminal or by another supervisor.
	Managed bool `json:"managed"`
	// StartedAt is when the process started; zero when unknown.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// StalePIDFile is a pid file that names no running daemon of the config.
type StalePIDFile struct {
	Path string `json:"path"`
	PID  int    `json:"pid,omitempty"`
	// Why says what runs under the pid instead.
	Why string `json:"why"`
	raw []byte
}

// State is what the pid files say, checked against the processes.
type State struct {
	// Daemon is nil when none runs.
	Daemon *Daemon
	Stale  []StalePIDFile
}

// State reads both pid files. A pid file is stale when its process has
// exited (a crash, a SIGKILL, a reboot), when the kernel has given its
// pid to another program, or when it holds no pid at all.
func (s *Service) State() (State, error) {
	var st State
	svc, raw, err := s.inspect(s.PIDFile)
	if err != nil {
		return st, err
	}
	switch {
	case svc.Live && s.servesConfig(svc.Args):
		st.Daemon = &Daemon{PID: svc.PID, Managed: true}
	case svc.Live:
		st.Stale = append(st.Stale, StalePIDFile{Path: s.PIDFile, PID: svc.PID, raw: raw,
			Why: fmt.Sprintf("pid %d is a regctl serve of another config", svc.PID)})
	case raw != nil:
		st.Stale = append(st.Stale, stale(svc, raw))
	}
	cfgPID, raw, err := s.inspect(serve.PIDFilePath(s.Config))
	if err != nil {
		return st, err
	}
	switch {
	case cfgPID.Live && st.Daemon == nil:
		st.Daemon = &Daemon{PID: cfgPID.PID}
	case cfgPID.Live:
		// Ours, or one that serve will refuse to let start beside ours.
	case raw != nil && (st.Daemon == nil || !st.Daemon.Managed):
		st.Stale = append(st.Stale, stale(cfgPID, raw))
	case raw != nil:
		// Our daemon is starting and has not replaced the file yet: it
		// will, so the file is not reported.
	}
	if st.Daemon != nil {
		st.Daemon.StartedAt, _ = processStart(st.Daemon.PID)
	}
	return st, nil
}

// inspect reads a pid file; raw is nil when there is none. A file that
// holds no pid is reported as not live, with raw set.
func (s *Service) inspect(path string) (serve.PIDFileInfo, []byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return serve.PIDFileInfo{Path: path}, nil, nil
	}
	if err != nil {
		return serve.PIDFileInfo{}, nil, err
	}
	info, err := serve.InspectPIDFile(path)
	if errors.Is(err, serve.ErrBadPIDFile) {
		return serve.PIDFileInfo{Path: path}, raw, nil
	}
	return info, raw, err
}

func stale(info serve.PIDFileInfo, raw []byte) StalePIDFile {
	sp := StalePIDFile{Path: info.Path, PID: info.PID, raw: raw}
	switch {
	case info.PID == 0:
		sp.Why = "it holds no pid"
	case info.Program == "":
		sp.Why = fmt.Sprintf("process %d has exited", info.PID)
	default:
		sp.Why = fmt.Sprintf("pid %d now belongs to another program (%s)", info.PID, info.Program)
	}
	return sp
}

// servesConfig tells whether a regctl serve command line names the
// service's config, as Start writes it.
func (s *Service) servesConfig(args []string) bool {
	i := slices.Index(args, "serve")
	return i >= 0 && slices.Contains(args[i+1:], s.Config)
}

// RemoveStale deletes the stale pid files, each only if it still holds
// what was read, so a daemon that has just written its pid meanwhile
// keeps its file.
func RemoveStale(files []StalePIDFile) ([]StalePIDFile, error) {
	var removed []StalePIDFile
	var errs []error
	for _, f := range files {
		cur, err := os.ReadFile(f.Path)
		if err != nil || !bytes.Equal(cur, f.raw) {
			continue
		}
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f)
	}
	return removed, errors.Join(errs...)
}

// lock keeps two regctl runs from starting or stopping the daemon at
// once (two starts would race for the pid file). It does not wait: the
// other run may be draining for a while. With no registry folder there
// is nothing to protect, and nowhere to put the lock.
func (s *Service) lock() (func(), error) {
	dir := filepath.Dir(s.PIDFile)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	unlock, err := fsutil.Lock(filepath.Join(dir, ".service.lock"))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, errors.New("another regctl start, stop, restart or reconfigure is acting on this registry; try again when it is done")
	}
	return unlock, err
}

// removeIfNames deletes a pid file when it names pid.
func removeIfNames(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && string(bytes.TrimSpace(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}
