// Package cmd wires regctl's flags to pkg/: it parses, calls, and prints.
// Business logic lives in pkg/.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
)

// Version is set at build time with -ldflags "-X regctl/cmd.Version=...".
var Version = "0.1.0-dev"

// rootOpts are the flags every command shares.
type rootOpts struct {
	settings string
	output   string
	noColor  bool
	stdout   io.Writer
	stderr   io.Writer
}

// settingsPath applies the precedence --settings > REGCTL_SETTINGS > default.
func (o *rootOpts) settingsPath() string {
	if o.settings != "" {
		return o.settings
	}
	if env := os.Getenv("REGCTL_SETTINGS"); env != "" {
		return env
	}
	return settings.DefaultSettingsPath
}

// loadSettings loads and validates the settings; their warnings go to
// stderr, once, and do not stop the command.
func (o *rootOpts) loadSettings() (*settings.Loaded, error) {
	l, err := settings.Load(o.settingsPath())
	if err != nil {
		return nil, err
	}
	o.warn(l.Warnings)
	return l, nil
}

// warn shows settings warnings on stderr, each with file, line and key.
func (o *rootOpts) warn(ws []*settings.Problem) {
	for _, w := range ws {
		fmt.Fprintln(o.stderr, ui.WarningText(o.stderr, o.noColor, w.Error()))
	}
}

func (o *rootOpts) printer() *ui.Printer {
	return ui.New(o.stdout, ui.Format(o.output), o.noColor)
}

func (o *rootOpts) json() bool { return o.output == string(ui.JSON) }

// NewRootCmd builds the command tree writing to the given streams.
func NewRootCmd(stdout, stderr io.Writer) (*cobra.Command, *rootOpts) {
	o := &rootOpts{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "regctl",
		Short: "Run and maintain a GitLab-style container registry from one settings file",
		Long: `regctl is gitlab-ctl for the container registry alone. One settings file,
regctl.toml, whose keys mirror gitlab.rb, drives the registry's config.yml,
GitLab's gitlab.yml, the token-signing key pair and maintenance.`,
		Example: `  regctl reconfigure --settings ./regctl.toml
  regctl certs verify
  regctl registry-readonly enable`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if o.output != string(ui.Text) && o.output != string(ui.JSON) {
				return usageError{fmt.Errorf("--output must be text or json, not %q", o.output)}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&o.settings, "settings", "", "settings file (env REGCTL_SETTINGS; default "+settings.DefaultSettingsPath+")")
	pf.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	pf.BoolVar(&o.noColor, "no-color", false, "plain output without colours (also when NO_COLOR is set)")

	root.AddCommand(
		newReconfigureCmd(o),
		newCertsCmd(o),
		newReadonlyCmd(o),
		newServeCmd(o),
		newTokenCmd(o),
		newGCCmd(o),
		newMigrateCmd(o),
		newUsageCmd(o),
		newCleanupCmd(o),
	)
	root.AddCommand(newServiceCmds(o)...)
	return root, o
}

// usageError marks bad flags or arguments: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// silentError is a failure the command has already explained in its
// output (a failed check, say): exit 1 with only a short summary.
type silentError struct{ error }

func (e silentError) Unwrap() error { return e.error }

// Execute runs regctl with os.Args and returns the exit code:
// 0 ok, 1 failure, 2 bad usage or invalid settings.
func Execute() int {
	return run(os.Args[1:], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := interruptible()
	defer stop()
	root, o := NewRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var quiet quietExit
	if errors.As(err, &quiet) {
		return quiet.code
	}
	code := exitCode(err)
	var inv *settings.InvalidError
	if o.json() && errors.As(err, &inv) {
		// Scripts get the problems as data on stdout.
		_ = o.printer().JSON(map[string]any{"error": "invalid settings", "problems": inv.Problems()})
	}
	fmt.Fprintln(stderr, ui.ErrorText(stderr, o.noColor, errorMessage(err)))
	return code
}

// interruptible is the context of every command, c.Context(): the
// first SIGINT (Ctrl-C) or SIGTERM cancels it, with the signal as its
// cause, and the command stops cleanly, releasing what it holds (a
// job's lock and lease, a daemon's listeners). A second one is no
// longer caught and ends the process, as if regctl caught none: a
// command that is slow to stop, or does not watch its context, can
// still be killed from the keyboard. This is the one place regctl
// handles these signals.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

func exitCode(err error) int {
	var inv *settings.InvalidError
	var usage usageError
	switch {
	case errors.As(err, &inv), errors.As(err, &usage), errors.Is(err, settings.ErrNoSettings):
		return 2
	case isCobraUsage(err):
		return 2
	}
	return 1
}

// isCobraUsage recognises cobra's own argument errors, which are plain
// errors without a type to match.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") ||
		strings.HasPrefix(msg, "requires ") || strings.HasPrefix(msg, "invalid argument")
}

// errorMessage adds a hint for the errors users meet most.
func errorMessage(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, settings.ErrNoSettings):
		msg += "\nhint: pass --settings FILE or set REGCTL_SETTINGS"
	case errors.Is(err, reconfigure.ErrPairExists):
		msg += "\nhint: replacing the pair invalidates tokens GitLab signed with the old key until GitLab and the registry restart"
	}
	return msg
}
