package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/reconfigure"
	"regctl/pkg/serve"
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
atomically, and only when their content or mode changes.`,
		Example: `  regctl reconfigure
  regctl reconfigure --dry-run          # show a diff, write nothing
  regctl reconfigure --settings ./regctl.toml -o json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	c.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "print what would change as a unified diff and write nothing")
	return c
}

func (o *reconfigureOpts) run(*cobra.Command, []string) error {
	l, err := o.loadSettings()
	if err != nil {
		return err
	}
	res, err := reconfigure.Run(l, reconfigure.Options{DryRun: o.dryRun})
	if err != nil {
		return err
	}
	var reload reloadResult
	if !o.dryRun {
		reload = reloadDaemon(l)
	}
	p := o.printer()
	if o.json() {
		out := struct {
			*reconfigure.Result
			Reload *reloadResult `json:"reload,omitempty"`
		}{Result: res}
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

// reloadResult is what happened when regctl told its daemon to reload.
type reloadResult struct {
	Config string `json:"config"`
	PID    int    `json:"pid,omitempty"` // 0: no regctl serve runs on it
	Error  string `json:"error,omitempty"`
}

// reloadDaemon tells a regctl serve running on the rendered config to
// re-read it (SIGHUP): read-only mode and the log level change live.
func reloadDaemon(l *reconfigure.Loaded) reloadResult {
	r := reloadResult{Config: l.Resolve().ConfigYML}
	pid, err := serve.SignalReload(r.Config)
	r.PID = pid
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (r reloadResult) print(p *ui.Printer) {
	switch {
	case r.Error != "":
		p.Line(ui.Warn, "regctl serve", "could not signal it: "+r.Error)
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
