package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"regctl/internal/fsutil"
	"regctl/pkg/distconfig"
	"regctl/pkg/pidfile"
)

// DefaultStartTimeout is how long Start waits for the daemon to listen.
// Opening an S3 storage is bounded by its own, shorter, timeout.
const DefaultStartTimeout = time.Minute

// StartResult says what Start did.
type StartResult struct {
	PID int `json:"pid"`
	// AlreadyRunning is set when a daemon already served the config;
	// PID and Managed are then that daemon's.
	AlreadyRunning bool   `json:"already_running"`
	Managed        bool   `json:"managed"`
	Addr           string `json:"addr"`
	Log            string `json:"log"`
	// RemovedStale lists the stale pid files removed first.
	RemovedStale []StalePIDFile `json:"removed_stale,omitempty"`
	Took         time.Duration  `json:"-"`
	// LogTail is the end of the daemon's log when it failed to start.
	LogTail string `json:"log_tail,omitempty"`
}

// StartError is a daemon that exited, or never listened, after Start
// ran it. LogTail is the end of what it logged.
type StartError struct {
	PID     int
	Err     error
	Log     string
	LogTail string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("regctl serve (pid %d) %v; its log is %s", e.PID, e.Err, e.Log)
}

func (e *StartError) Unwrap() error { return e.Err }

// Start runs `regctl serve CONFIG` in the background: in a session of
// its own (no terminal's hangup or Ctrl-C reaches it), stdin from
// /dev/null, stdout and stderr appended to the log. It returns once the
// daemon listens, or fails with a *StartError when it exits first. A
// daemon that already serves the config is left as it is.
func (s *Service) Start(ctx context.Context, timeout time.Duration) (*StartResult, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.start(ctx, timeout)
}

func (s *Service) start(ctx context.Context, timeout time.Duration) (*StartResult, error) {
	begin := time.Now()
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	cfg, err := s.loadConfig()
	if err != nil {
		return nil, err
	}
	res := &StartResult{Addr: cfg.HTTP.Addr, Log: s.Log}
	st, err := s.State()
	if err != nil {
		return nil, err
	}
	if st.Daemon != nil {
		res.PID, res.Managed, res.AlreadyRunning = st.Daemon.PID, st.Daemon.Managed, true
		return res, nil
	}
	if res.RemovedStale, err = RemoveStale(st.Stale); err != nil {
		return res, err
	}
	network, addr := dialTarget(cfg.HTTP)
	if canDial(network, addr) {
		// The daemon would fail to listen; worse, waiting for it would
		// mistake the other program for it.
		return res, fmt.Errorf("http.addr %s: another program already listens there", cfg.HTTP.Addr)
	}

	exe := s.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return res, fmt.Errorf("find the regctl binary: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.Log), 0o750); err != nil {
		return res, fmt.Errorf("log folder: %w", err)
	}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return res, fmt.Errorf("log: %w", err)
	}
	defer logf.Close()
	fi, err := logf.Stat()
	if err != nil {
		return res, err
	}
	offset := fi.Size() // this run's lines start here

	cmd := exec.Command(exe, "serve", s.Config)
	cmd.Env = s.Env
	cmd.Stdout, cmd.Stderr = logf, logf // stdin nil: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("run %s serve: %w", exe, err)
	}
	pid := cmd.Process.Pid
	res.PID, res.Managed = pid, true
	// Reap it if it exits while we wait; after we return, init does.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fail := func(err error) (*StartResult, error) {
		res.LogTail = tailFrom(s.Log, offset, 20)
		return res, &StartError{PID: pid, Err: err, Log: s.Log, LogTail: res.LogTail}
	}
	if err := fsutil.WriteFileAtomic(s.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		<-done
		return res, fmt.Errorf("service pid file: %w", err)
	}

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	cfgPIDFile := pidfile.Path(s.Config)
	for {
		select {
		case err := <-done:
			removeIfNames(s.PIDFile, pid)
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return fail(fmt.Errorf("stopped before it listened: %w", err))
		case <-deadline.C:
			return fail(fmt.Errorf("still runs but does not listen on %s after %s; `regctl stop` ends it", cfg.HTTP.Addr, timeout))
		case <-ctx.Done():
			return fail(fmt.Errorf("still starting when interrupted: %w", ctx.Err()))
		case <-tick.C:
		}
		// Ready: it has recorded itself as the config's daemon (so what
		// answers is not someone else) and answers HTTP, which it does
		// only once its first maintenance round is done.
		if info, _ := pidfile.Inspect(cfgPIDFile); info.PID == pid && probe(ctx, cfg.HTTP, cfg.HTTP.Addr).Status != 0 {
			res.Took = time.Since(begin)
			return res, nil
		}
	}
}

// loadConfig parses config.yml as the daemon will, so a config that
// cannot run fails here, with the daemon's own message.
func (s *Service) loadConfig() (*distconfig.Config, error) {
	if _, err := os.Stat(s.Config); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: run `regctl reconfigure` first (with [registry] enable = true)", s.Config)
	}
	return distconfig.Load(s.Config, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// dialTarget is where a client on this host reaches a listener on
// http.addr: a wildcard host is reached on loopback.
func dialTarget(h distconfig.HTTP) (network, addr string) {
	if h.Net == "unix" {
		return "unix", h.Addr
	}
	host, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		return "tcp", h.Addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "tcp", net.JoinHostPort(host, port)
}

func canDial(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
