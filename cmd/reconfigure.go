package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/reconfigure"
	"regctl/pkg/serve"
	"regctl/pkg/service"
	"regctl/pkg/settings"
)

type reconfigureOpts struct {
	*rootOpts
	dryRun bool
}

func newReconfigureCmd(root *rootOpts) *cobra.Command {
	o := &reconfigureOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "reconfigure",
		Short: "Render config.yml, gitlab.yml, secrets and the key pair from the settings",
		Long: `reconfigure validates the settings file, then renders the registry's
config.yml, GitLab's gitlab.yml, the token-signing certificate and key, and
generates missing secrets into regctl-secrets.json beside the settings file.

Nothing is written when the settings are invalid. Files are written
atomically, and only when their content or mode changes.

A regctl serve running on config.yml is then told to reload (SIGHUP). One
that regctl start started is restarted instead when a changed setting cannot
be reloaded (the listen address, TLS, the storage driver or its parameters).`,
		Example: `  regctl reconfigure
  regctl reconfigure --dry-run          # show a diff, write nothing
  regctl reconfigure --settings ./regctl.toml -o json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	c.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "print what would change as a unified diff and write nothing")
	return c
}

func (o *reconfigureOpts) run(c *cobra.Command, _ []string) error {
	l, err := o.loadSettings()
	if err != nil {
		return err
	}
	// Only reconfigure mentions disabled cleanup policies: they are
	// GitLab's default, and registry-cleanup reports them itself.
	disabled := l.DisabledPolicyWarnings()
	o.warn(disabled)
	// config.yml as the daemon may be running it, to tell a reload from
	// a restart once Run has replaced it.
	oldConfig, err := os.ReadFile(l.Resolve().ConfigYML)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	res, err := reconfigure.Run(l, reconfigure.Options{DryRun: o.dryRun})
	if err != nil {
		return err
	}
	var reload reloadResult
	if !o.dryRun {
		reload = applyToDaemon(c.Context(), l, oldConfig)
	}
	p := o.printer()
	if o.json() {
		out := struct {
			*reconfigure.Result
			Reload *reloadResult `json:"reload,omitempty"`
			// Warnings are the settings' warnings, also shown on stderr.
			Warnings []*settings.Problem `json:"warnings,omitempty"`
		}{Result: res, Warnings: append(slices.Clip(l.Warnings), disabled...)}
		if !o.dryRun {
			out.Reload = &reload
		}
		return p.JSON(out)
	}
	if err := printResult(p, res); err != nil {
		return err
	}
	if !o.dryRun {
		reload.print(p)
	}
	return nil
}

// reloadResult is what happened when regctl told its daemon to reload
// or restarted it.
type reloadResult struct {
	Config string `json:"config"`
	PID    int    `json:"pid,omitempty"` // 0: no regctl serve runs on it
	// Managed: started by `regctl start`, so reconfigure may restart it.
	Managed bool `json:"managed,omitempty"`
	// NeedsRestart names changed settings a reload cannot apply.
	NeedsRestart []string `json:"needs_restart,omitempty"`
	Restarted    bool     `json:"restarted,omitempty"`
	NewPID       int      `json:"new_pid,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// reloadDaemon tells a regctl serve running on the rendered config to
// re-read it (SIGHUP): read-only mode and the log level change live.
func reloadDaemon(l *settings.Loaded) reloadResult {
	r := reloadResult{Config: l.Resolve().ConfigYML}
	pid, err := serve.SignalReload(r.Config)
	r.PID = pid
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// applyToDaemon reloads the daemon, or restarts it when it was started
// by `regctl start` and a setting changed that a reload cannot apply.
func applyToDaemon(ctx context.Context, l *settings.Loaded, oldConfig []byte) reloadResult {
	a, err := service.New(l.Resolve()).Apply(ctx, oldConfig)
	r := reloadResult{Config: a.Config, PID: a.PID, Managed: a.Managed, NeedsRestart: a.NeedsRestart,
		Restarted: a.Restarted, NewPID: a.NewPID}
	if err != nil {
		r.Error = err.Error()
		var se *service.StartError
		if errors.As(err, &se) && se.LogTail != "" {
			r.Error += "\n" + strings.TrimRight(se.LogTail, "\n")
		}
	}
	return r
}

func (r reloadResult) print(p *ui.Printer) {
	changed := strings.Join(r.NeedsRestart, ", ")
	switch {
	case r.Error != "" && len(r.NeedsRestart) > 0 && r.Managed:
		p.Line(ui.Fail, "regctl serve", fmt.Sprintf("restart for %s failed:", changed))
		p.Hint(r.Error)
	case r.Error != "":
		p.Line(ui.Warn, "regctl serve", "could not signal it: "+r.Error)
	case r.Restarted:
		p.Line(ui.OK, "regctl serve", fmt.Sprintf("restarted (%s changed, which a reload cannot apply): pid %d -> %d", changed, r.PID, r.NewPID))
	case r.PID != 0 && len(r.NeedsRestart) > 0:
		p.Line(ui.Warn, "regctl serve", fmt.Sprintf("pid %d told to reload, but %s changed, which needs a restart; "+
			"it was not started by `regctl start`, so restart it where it runs", r.PID, changed))
	case r.PID != 0:
		p.Line(ui.OK, "regctl serve", fmt.Sprintf("pid %d told to reload %s", r.PID, r.Config))
	default:
		p.Line(ui.Info, "regctl serve", "none running on this config; restart any other registry daemon to apply changes")
	}
}

// printResult reports each file as created, updated or unchanged (and,
// in a dry run, the diff).
func printResult(p *ui.Printer, res *reconfigure.Result) error {
	if p.Format == ui.JSON {
		return p.JSON(res)
	}
	title := "reconfigure: " + res.Settings
	if res.DryRun {
		title += " (dry run: nothing written)"
	}
	p.Title(title)
	verb := func(c reconfigure.Change) string {
		if res.DryRun && c != reconfigure.Unchanged {
			return "would be " + string(c)
		}
		return string(c)
	}
	for _, d := range res.DirsCreated {
		st, what := ui.Info, "created"
		if res.DryRun {
			what = "would be created"
		}
		p.Line(st, "folder", d+" "+what)
	}
	for _, f := range res.Files {
		st := ui.OK
		if f.Change != reconfigure.Unchanged {
			st = ui.Info
		}
		detail := fmt.Sprintf("%s %s", f.Path, verb(f.Change))
		if f.Note != "" {
			detail += " (" + f.Note + ")"
		}
		p.Line(st, f.Role, detail)
		if f.Diff != "" {
			p.Diff(f.Diff)
		}
	}
	if len(res.Generated) > 0 {
		p.Line(ui.Info, "secrets", "generated "+strings.Join(res.Generated, ", "))
	}
	if !res.Changed() {
		p.Text("Everything is up to date.")
	}
	return nil
}
