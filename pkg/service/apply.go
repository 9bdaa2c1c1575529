package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"regctl/pkg/serve"
)

// ApplyResult says how a running daemon was brought up to date with a
// newly rendered config.
type ApplyResult struct {
	Config string `json:"config"`
	// PID is the daemon found running; 0 when none was.
	PID int `json:"pid,omitempty"`
	// Managed is set when `regctl start` started it.
	Managed bool `json:"managed,omitempty"`
	// NeedsRestart names the changed settings a reload cannot apply.
	NeedsRestart []string `json:"needs_restart,omitempty"`
	// Restarted is set when the daemon was restarted; NewPID is the new
	// one. Otherwise it was sent SIGHUP (Reloaded).
	Restarted bool `json:"restarted,omitempty"`
	NewPID    int  `json:"new_pid,omitempty"`
	Reloaded  bool `json:"reloaded,omitempty"`
}

// Apply brings the daemon serving the config up to date after
// reconfigure rewrote it; oldConfig is config.yml as it was before (nil
// when it did not exist). A daemon started by `regctl start` is
// restarted when a setting changed that SIGHUP cannot apply (the
// listener, TLS, the storage driver or its parameters, ...); any other
// daemon is only reloaded, since restarting it would take it from its
// supervisor, and NeedsRestart tells the caller to say so.
func (s *Service) Apply(ctx context.Context, oldConfig []byte) (*ApplyResult, error) {
	res := &ApplyResult{Config: s.Config}
	unlock, err := s.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	st, err := s.State()
	if err != nil {
		return res, err
	}
	if st.Daemon == nil {
		return res, nil
	}
	res.PID, res.Managed = st.Daemon.PID, st.Daemon.Managed
	newConfig, err := os.ReadFile(s.Config)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil // nothing to serve any more; reconfigure says why
	}
	if err != nil {
		return res, err
	}
	if oldConfig == nil {
		res.NeedsRestart = []string{"config.yml was created"}
	} else if res.NeedsRestart, err = serve.CompareConfigs(oldConfig, newConfig); err != nil {
		// The daemon would refuse it on reload too and keep running.
		return res, fmt.Errorf("the new config.yml: %w", err)
	}
	if len(res.NeedsRestart) > 0 && res.Managed {
		r, err := s.restart(ctx, 0, 0)
		res.Restarted = err == nil
		if r != nil && r.Start != nil {
			res.NewPID = r.Start.PID
		}
		return res, err
	}
	if err := syscall.Kill(res.PID, syscall.SIGHUP); err != nil {
		return res, fmt.Errorf("signal regctl serve (pid %d): %w", res.PID, err)
	}
	res.Reloaded = true
	return res, nil
}
