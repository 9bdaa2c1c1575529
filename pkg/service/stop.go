package service

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"regctl/pkg/distconfig"
	"regctl/pkg/pidfile"
)

// StopMargin is added to http.draintimeout for the default stop timeout:
// the daemon drains for up to draintimeout, then still has its heartbeat
// to remove and files to close.
const StopMargin = 10 * time.Second

// killWait bounds the wait for a SIGKILLed process to go.
const killWait = 5 * time.Second

// StopResult says what Stop did.
type StopResult struct {
	PID        int  `json:"pid,omitempty"`
	WasRunning bool `json:"was_running"`
	Managed    bool `json:"managed"`
	// Killed is set when the daemon outlived the timeout and got SIGKILL.
	Killed  bool          `json:"killed"`
	Timeout time.Duration `json:"-"`
	Took    time.Duration `json:"-"`
	// RemovedStale lists the stale pid files removed.
	RemovedStale []StalePIDFile `json:"removed_stale,omitempty"`
}

// Stop ends the daemon serving the config, whoever started it: SIGTERM,
// which makes it drain requests in flight for up to http.draintimeout,
// then SIGKILL once timeout has passed (0: draintimeout + StopMargin).
// Its pid files go, and so do stale ones. A daemon that is not running
// is no error.
func (s *Service) Stop(ctx context.Context, timeout time.Duration) (*StopResult, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.stop(ctx, timeout)
}

func (s *Service) stop(ctx context.Context, timeout time.Duration) (*StopResult, error) {
	res := &StopResult{}
	st, err := s.State()
	if err != nil {
		return nil, err
	}
	if res.RemovedStale, err = RemoveStale(st.Stale); err != nil {
		return res, err
	}
	if st.Daemon == nil {
		return res, nil
	}
	pid := st.Daemon.PID
	res.PID, res.Managed, res.WasRunning = pid, st.Daemon.Managed, true
	if timeout <= 0 {
		timeout = s.drainTimeout() + StopMargin
	}
	res.Timeout = timeout
	begin := time.Now()
	defer func() {
		res.Took = time.Since(begin)
		if pidfile.Exited(pid) {
			removeIfNames(s.PIDFile, pid)
			// Gone after SIGKILL, it could not remove its own.
			removeIfNames(pidfile.Path(s.Config), pid)
		}
	}()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return res, fmt.Errorf("signal regctl serve (pid %d): %w", pid, err)
	}
	if waitExit(ctx, pid, timeout) {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("pid %d still draining when interrupted: %w", pid, ctx.Err())
	}
	res.Killed = true
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return res, fmt.Errorf("kill regctl serve (pid %d): %w", pid, err)
	}
	if !waitExit(context.Background(), pid, killWait) {
		return res, fmt.Errorf("regctl serve (pid %d) survived SIGKILL for %s", pid, killWait)
	}
	return res, nil
}

// drainTimeout is http.draintimeout of the config on disk (what the
// daemon runs unless it was changed without a restart), or the default.
func (s *Service) drainTimeout() time.Duration {
	cfg, err := s.loadConfig()
	if err != nil {
		return distconfig.DefaultDrainTimeout
	}
	return cfg.HTTP.DrainTimeout
}

// waitExit polls until pid has exited, for at most limit.
func waitExit(ctx context.Context, pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !pidfile.Exited(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// RestartResult is a Stop followed by a Start.
type RestartResult struct {
	Stop  *StopResult  `json:"stop"`
	Start *StartResult `json:"start,omitempty"`
}

// Restart stops the daemon (if it runs) and starts it again.
func (s *Service) Restart(ctx context.Context, stopTimeout, startTimeout time.Duration) (*RestartResult, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.restart(ctx, stopTimeout, startTimeout)
}

func (s *Service) restart(ctx context.Context, stopTimeout, startTimeout time.Duration) (*RestartResult, error) {
	stop, err := s.stop(ctx, stopTimeout)
	res := &RestartResult{Stop: stop}
	if err != nil {
		return res, err
	}
	res.Start, err = s.start(ctx, startTimeout)
	return res, err
}
