package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"regctl/pkg/distconfig"
)

// ApplyOptions say how far Apply may go.
type ApplyOptions struct {
	// ReloadOnly never restarts the daemon, even one `regctl start`
	// started: a change a reload cannot apply is only reported in
	// NeedsRestart. A storage cutover wants this: the daemon keeps
	// serving the old storage, read-only, until its admin restarts it.
	ReloadOnly bool
}

// ApplyResult says how a running daemon was brought up to date with a
// newly rendered config. reconfigure, registry-readonly and the storage
// cutover all report it.
type ApplyResult struct {
	Config string `json:"config"`
	// PID is the daemon found running; 0 when none was.
	PID int `json:"pid,omitempty"`
	// Managed is set when `regctl start` started it.
	Managed bool `json:"managed,omitempty"`
	// NeedsRestart names the changed settings a reload cannot apply.
	NeedsRestart []string `json:"needs_restart,omitempty"`
	// Restarted is set when the daemon was restarted; NewPID is the new
	// one.
	Restarted bool `json:"restarted,omitempty"`
	NewPID    int  `json:"new_pid,omitempty"`
	// Reloaded is set when the daemon was sent SIGHUP.
	Reloaded bool `json:"-"`
	// Error is why the daemon could not be brought up to date, with the
	// end of its log when a restart failed; "" on success.
	Error string `json:"error,omitempty"`
	err   error
}

// Err is the error Apply returned, nil on success.
func (r *ApplyResult) Err() error { return r.err }

// Apply is the one way regctl brings the daemon serving the config up to
// date after the config was rewritten: reconfigure, registry-readonly
// and the storage cutover all go through it. oldConfig is config.yml as
// it was before (nil when it did not exist); comparing it with the file
// now on disk (distconfig.CompareConfigs) tells a reload from a restart.
//
// A daemon started by `regctl start` is restarted when a setting
// changed that SIGHUP cannot apply (the listener, TLS, the storage
// driver or its parameters, ...), unless opts.ReloadOnly; Apply then
// returns once the new daemon listens. Any other daemon is only
// reloaded, since restarting it would take it from its supervisor, and
// NeedsRestart tells the caller to say so. With no daemon running,
// nothing happens (PID 0).
//
// The error, if any, is also in the result (Error, Err).
func (s *Service) Apply(ctx context.Context, oldConfig []byte, opts ApplyOptions) (*ApplyResult, error) {
	res := &ApplyResult{Config: s.Config}
	err := s.apply(ctx, oldConfig, opts, res)
	if err != nil {
		res.err = err
		res.Error = err.Error()
		var se *StartError
		if errors.As(err, &se) && se.LogTail != "" {
			res.Error += "\n" + strings.TrimRight(se.LogTail, "\n")
		}
	}
	return res, err
}

func (s *Service) apply(ctx context.Context, oldConfig []byte, opts ApplyOptions, res *ApplyResult) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.State()
	if err != nil {
		return err
	}
	if st.Daemon == nil {
		return nil
	}
	res.PID, res.Managed = st.Daemon.PID, st.Daemon.Managed
	newConfig, err := os.ReadFile(s.Config)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to serve any more; reconfigure says why
	}
	if err != nil {
		return err
	}
	if oldConfig == nil {
		res.NeedsRestart = []string{"config.yml was created"}
	} else if res.NeedsRestart, err = distconfig.CompareConfigs(oldConfig, newConfig); err != nil {
		// The daemon would refuse it on reload too and keep running.
		return fmt.Errorf("the new config.yml: %w", err)
	}
	if len(res.NeedsRestart) > 0 && res.Managed && !opts.ReloadOnly {
		r, err := s.restart(ctx, 0, 0)
		res.Restarted = err == nil
		if r != nil && r.Start != nil {
			res.NewPID = r.Start.PID
		}
		return err
	}
	if err := syscall.Kill(res.PID, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal regctl serve (pid %d): %w", res.PID, err)
	}
	res.Reloaded = true
	return nil
}

// ReadConfig is config.yml as the daemon may be running it, read before
// something rewrites it, for Apply to compare with; nil when it does
// not exist.
func (s *Service) ReadConfig() ([]byte, error) {
	b, err := os.ReadFile(s.Config)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
