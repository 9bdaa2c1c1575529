package cmd

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/maintenance"
	"regctl/pkg/service"
)

// exitNotRunning is `regctl status`'s exit code when no daemon runs: the
// LSB init-script code for "program is not running", which `gitlab-ctl
// status` scripts test too.
const exitNotRunning = 3

// quietExit ends regctl with a code and nothing on stderr: the output
// has said it all.
type quietExit struct{ code int }

func (e quietExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type serviceOpts struct {
	*rootOpts
	timeout time.Duration
}

func (o *serviceOpts) service() (*service.Service, error) {
	l, err := o.loadSettings()
	if err != nil {
		return nil, err
	}
	return service.New(l.Resolve()), nil
}

// newServiceCmds are gitlab-ctl's verbs for the registry daemon.
func newServiceCmds(root *rootOpts) []*cobra.Command {
	return []*cobra.Command{newStartCmd(root), newStopCmd(root), newRestartCmd(root), newStatusCmd(root), newTailCmd(root)}
}

func newStartCmd(root *rootOpts) *cobra.Command {
	o := &serviceOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "start",
		Short: "Run the registry daemon in the background",
		Long: `start runs ` + "`regctl serve`" + ` on the config.yml that reconfigure rendered, in the
background: in a session of its own, its output appended to
data_dir/log/registry/current. It returns once the daemon listens; when the
daemon exits instead, start prints the end of its log and fails.

A daemon already serving the config is left alone (exit 0). Stale pid files,
left by a crash or naming a pid now used by another program, are removed.`,
		Example: `  regctl start
  regctl start --timeout 2m     # a slow S3 endpoint`,
		Args: cobra.NoArgs,
		RunE: o.runStart,
	}
	c.Flags().DurationVar(&o.timeout, "timeout", service.DefaultStartTimeout, "how long to wait for the daemon to listen")
	return c
}

func (o *serviceOpts) runStart(c *cobra.Command, _ []string) error {
	svc, err := o.service()
	if err != nil {
		return err
	}
	res, err := svc.Start(c.Context(), o.timeout)
	p := o.printer()
	if o.json() && res != nil {
		if jerr := p.JSON(res); jerr != nil {
			return jerr
		}
	} else if res != nil {
		printRemoved(p, res.RemovedStale)
	}
	if err != nil {
		var se *service.StartError
		if errors.As(err, &se) && !o.json() {
			p.Line(ui.Fail, "regctl serve", fmt.Sprintf("pid %d did not start; the end of %s:", se.PID, se.Log))
			p.Hint(strings.TrimRight(se.LogTail, "\n"))
			return silentError{err}
		}
		return err
	}
	if o.json() {
		return nil
	}
	if res.AlreadyRunning {
		p.Line(ui.Info, "regctl serve", fmt.Sprintf("already running (pid %d%s)", res.PID, startedBy(res.Managed)))
		return nil
	}
	p.Line(ui.OK, "regctl serve", fmt.Sprintf("started: pid %d, listening on %s (%s)", res.PID, res.Addr, res.Took.Round(time.Millisecond)))
	p.Field("log", res.Log)
	return nil
}

func newStopCmd(root *rootOpts) *cobra.Command {
	o := &serviceOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "stop",
		Short: "Stop the registry daemon gracefully",
		Long: `stop sends SIGTERM to the daemon serving the rendered config.yml, whoever
started it. The daemon stops listening, lets requests in flight finish for up
to http.draintimeout (30s by default) and exits. If it still runs when the
timeout passes (by default draintimeout + 10s), stop sends SIGKILL.

A daemon that is not running is no error. Stale pid files are removed.`,
		Example: `  regctl stop
  regctl stop --timeout 5s      # kill whatever is still in flight after 5s`,
		Args: cobra.NoArgs,
		RunE: o.runStop,
	}
	c.Flags().DurationVar(&o.timeout, "timeout", 0, "SIGKILL the daemon if it still runs after this long (default http.draintimeout + 10s)")
	return c
}

func (o *serviceOpts) runStop(c *cobra.Command, _ []string) error {
	svc, err := o.service()
	if err != nil {
		return err
	}
	res, err := svc.Stop(c.Context(), o.timeout)
	p := o.printer()
	if res != nil {
		if o.json() {
			if jerr := p.JSON(res); jerr != nil {
				return jerr
			}
		} else {
			printStop(p, res)
		}
	}
	return err
}

func printStop(p *ui.Printer, res *service.StopResult) {
	printRemoved(p, res.RemovedStale)
	switch {
	case !res.WasRunning:
		p.Line(ui.Info, "regctl serve", "not running")
	case res.Killed:
		p.Line(ui.Warn, "regctl serve", fmt.Sprintf("pid %d killed: still running %s after SIGTERM", res.PID, res.Timeout))
	default:
		p.Line(ui.OK, "regctl serve", fmt.Sprintf("stopped pid %d%s (%s)", res.PID, startedBy(res.Managed), res.Took.Round(time.Millisecond)))
	}
}

func newRestartCmd(root *rootOpts) *cobra.Command {
	o := &serviceOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "restart",
		Short: "Stop the registry daemon, then start it",
		Long: `restart is stop followed by start. Use it for changes a reload cannot apply;
reconfigure does it for you when it rendered such a change.`,
		Example: `  regctl restart`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, err := o.service()
			if err != nil {
				return err
			}
			res, err := svc.Restart(c.Context(), o.timeout, 0)
			p := o.printer()
			if o.json() {
				if jerr := p.JSON(res); jerr != nil {
					return jerr
				}
				return err
			}
			if res.Stop != nil {
				printStop(p, res.Stop)
			}
			var se *service.StartError
			switch {
			case errors.As(err, &se):
				p.Line(ui.Fail, "regctl serve", fmt.Sprintf("pid %d did not start; the end of %s:", se.PID, se.Log))
				p.Hint(strings.TrimRight(se.LogTail, "\n"))
				return silentError{err}
			case err != nil:
				return err
			}
			printRemoved(p, res.Start.RemovedStale)
			p.Line(ui.OK, "regctl serve", fmt.Sprintf("started: pid %d, listening on %s", res.Start.PID, res.Start.Addr))
			return nil
		},
	}
	c.Flags().DurationVar(&o.timeout, "timeout", 0, "SIGKILL the old daemon if it still runs after this long (default http.draintimeout + 10s)")
	return c
}

func newStatusCmd(root *rootOpts) *cobra.Command {
	o := &serviceOpts{rootOpts: root}
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the registry daemon runs, and how it is",
		Long: `status shows the daemon serving the rendered config.yml: pid, uptime, the
address it listens on, its storage driver, its read-only state (from
config.yml, from a maintenance job's lease on the storage, and as the daemon
reports it), its health (GET /v2/: 200, or 401 under token auth, is up), the
backlog of each notification endpoint (events queued on disk; with
http.debug.addr set, also the running daemon's delivered, failed and dropped
counts) and the registry nodes whose heartbeats are in the storage.

The exit code is 0 when the daemon runs (even when unhealthy: see health)
and 3 when it does not, as LSB init scripts and gitlab-ctl status do.`,
		Example: `  regctl status
  regctl status -o json | jq .health.up
  regctl status >/dev/null || regctl start`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, err := o.service()
			if err != nil {
				return err
			}
			st, err := svc.Status(c.Context())
			if err != nil {
				return err
			}
			p := o.printer()
			if o.json() {
				if err := p.JSON(st); err != nil {
					return err
				}
			} else {
				printStatus(p, st)
			}
			if !st.Running {
				return quietExit{exitNotRunning}
			}
			return nil
		},
	}
}

func printStatus(p *ui.Printer, st *service.Status) {
	if st.Running {
		p.Line(ui.OK, "regctl serve", fmt.Sprintf("running: pid %d%s", st.PID, startedBy(st.Managed)))
	} else {
		p.Line(ui.Fail, "regctl serve", "not running")
	}
	for _, s := range st.Stale {
		p.Line(ui.Warn, "stale pid file", fmt.Sprintf("%s: %s (start or stop removes it)", s.Path, s.Why))
	}
	if st.Running && !st.StartedAt.IsZero() {
		p.Field("uptime", fmt.Sprintf("%s (since %s)", st.Uptime, st.StartedAt.Local().Format(time.RFC3339)))
	}
	p.Field("config", st.Config)
	p.Field("log", st.Log)
	if st.ConfigError != "" {
		p.Line(ui.Fail, "config.yml", st.ConfigError)
		return
	}
	addr := st.Addr
	if st.TLS {
		addr += " (TLS)"
	}
	p.Field("listen", addr)
	p.Field("storage", st.Storage)
	p.Field("read-only", readOnlyText(st.ReadOnly))
	if h := st.Health; h != nil {
		switch {
		case h.Up:
			p.Line(ui.OK, "health", fmt.Sprintf("up (GET %s: %d)", h.URL, h.Status))
		default:
			p.Line(ui.Fail, "health", fmt.Sprintf("down (GET %s: %s)", h.URL, h.Error))
		}
	}
	printNotifications(p, st.Notifications)
	if st.NodesError != "" {
		p.Line(ui.Warn, "nodes", "cannot read the storage's heartbeats: "+st.NodesError)
		return
	}
	if len(st.Nodes) == 0 {
		p.Field("nodes", "none on the storage")
	}
	for _, n := range st.Nodes {
		label := "node"
		if n.Self {
			label = "node (this daemon)"
		}
		printNode(p, label, n.NodeStatus)
	}
}

// printNotifications shows each endpoint's backlog: a warning when events
// wait or were dropped.
func printNotifications(p *ui.Printer, eps []service.NotificationBacklog) {
	for _, n := range eps {
		label := "notifications " + n.Name
		switch {
		case n.Error != "":
			p.Line(ui.Fail, label, fmt.Sprintf("%s: queue %s unreadable: %s", n.URL, n.Queue, n.Error))
			continue
		case n.Disabled:
			p.Field(label, fmt.Sprintf("%s: disabled, %d pending", n.URL, n.Pending))
			continue
		}
		stat, detail := ui.OK, fmt.Sprintf("%s: %d pending", n.URL, n.Pending)
		if n.Pending > 0 {
			stat = ui.Warn
		}
		if l := n.Live; l != nil {
			detail += fmt.Sprintf(", since start %d delivered, %d failed attempts, %d errors, %d dropped", l.Successes, l.Failures, l.Errors, l.Dropped)
			if l.Dropped > 0 {
				stat = ui.Fail
			}
			if l.LastError != "" {
				detail += "; last attempt failed: " + l.LastError
			}
		}
		p.Line(stat, label, detail)
	}
}

// printNode writes one heartbeat of the storage's node listing.
func printNode(p *ui.Printer, label string, n maintenance.NodeStatus) {
	stat := ui.OK
	detail := fmt.Sprintf("%s on %s, pid %d, %s", n.ID, n.Addr, n.PID, n.Host)
	if n.Version != "" {
		detail += ", " + n.Version
	}
	if n.ReadOnly {
		detail += ", read-only: " + n.ReadOnlyReason
	}
	if n.Gone {
		stat = ui.Warn
		detail += fmt.Sprintf(", gone (last seen %s ago)", time.Since(n.LastSeen).Truncate(time.Second))
	} else {
		detail += fmt.Sprintf(", seen %s ago", time.Since(n.LastSeen).Truncate(time.Millisecond))
	}
	if n.Problem != "" {
		detail += ", " + n.Problem
	}
	p.Line(stat, label, detail)
}

func readOnlyText(ro service.ReadOnly) string {
	var why []string
	if ro.Config {
		why = append(why, "config.yml")
	}
	if ro.Maintenance != nil {
		why = append(why, "maintenance: "+ro.Maintenance.String())
	}
	state := "no"
	switch {
	case ro.Daemon != nil && *ro.Daemon:
		state = "yes, the daemon refuses writes (" + ro.Reason + ")"
	case ro.Daemon != nil && len(why) > 0:
		// config.yml or a lease changed after the daemon's last heartbeat
		// or reload.
		state = "no, but " + strings.Join(why, " and ") + " say yes: reload pending"
	case len(why) > 0:
		state = "yes (" + strings.Join(why, "; ") + ")"
	}
	if ro.MaintenanceError != "" && ro.Daemon == nil {
		state += "; maintenance lease unknown"
	}
	return state
}

func startedBy(managed bool) string {
	if managed {
		return ", started by regctl start"
	}
	return ", not started by regctl start"
}

func printRemoved(p *ui.Printer, removed []service.StalePIDFile) {
	for _, s := range removed {
		p.Line(ui.Info, "stale pid file", fmt.Sprintf("removed %s: %s", s.Path, s.Why))
	}
}

type tailOpts struct {
	*rootOpts
	lines  int
	follow bool
}

func newTailCmd(root *rootOpts) *cobra.Command {
	o := &tailOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "tail",
		Short: "Follow the registry daemon's log",
		Long: `tail prints the end of data_dir/log/registry/current, where start sends the
daemon's output, and follows it like tail -F: it waits for a log that does
not exist yet and starts over when the log is truncated or replaced (by
logrotate, say). Ctrl-C stops it.`,
		Example: `  regctl tail
  regctl tail -n 100
  regctl tail -n 50 --follow=false`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.lines < 0 {
				return usageError{fmt.Errorf("-n must be 0 or more, not %d", o.lines)}
			}
			l, err := o.loadSettings()
			if err != nil {
				return err
			}
			svc := service.New(l.Resolve())
			return service.Tail(c.Context(), svc.Log, o.stdout, service.TailOptions{Lines: o.lines, Follow: o.follow})
		},
	}
	c.Flags().IntVarP(&o.lines, "lines", "n", 10, "how many of the last lines to print first")
	c.Flags().BoolVarP(&o.follow, "follow", "f", true, "keep printing what the daemon logs")
	return c
}
