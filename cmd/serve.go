package cmd

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"regctl/pkg/configsrc"
	"regctl/pkg/pidfile"
	"regctl/pkg/serve"
)

type serveOpts struct {
	*rootOpts
}

func newServeCmd(root *rootOpts) *cobra.Command {
	o := &serveOpts{rootOpts: root}
	return &cobra.Command{
		Use:   "serve [CONFIG]",
		Short: "Run the registry daemon",
		Long: `serve runs the OCI registry on a CNCF-Distribution-format config.yml:
CONFIG if given, else the config.yml that reconfigure rendered from the
settings file. With neither a CONFIG nor a settings file, it runs an embedded
default: 127.0.0.1:5000, filesystem storage in ./regctl-data, deletes on and
NO authentication.

Logs go to stderr in log.formatter (text and logfmt: key=value lines; json:
one JSON object a line), with an access line per request carrying its
request id. SIGHUP re-reads the config: read-only mode, auth and the log
level change without a restart. SIGTERM or Ctrl-C drains requests in flight (http.draintimeout).`,
		Example: `  regctl serve                                   # embedded default, or the rendered config
  regctl serve /var/opt/regctl/registry/config.yml
  kill -HUP $(cat /var/opt/regctl/registry/config.yml.pid)   # reload`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
}

func (o *serveOpts) run(c *cobra.Command, args []string) error {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: level}))
	configArg := ""
	if len(args) == 1 {
		configArg = args[0]
	}
	explicit := o.settings != "" || os.Getenv("REGCTL_SETTINGS") != ""
	src, err := configsrc.Find(configArg, o.settingsPath(), explicit, log)
	if err != nil {
		return err
	}
	log = serve.NewLogger(o.stderr, src.Config.Log, level)
	if src.Embedded {
		log.Warn("no settings file and no config: running the embedded default with NO authentication; anyone who can reach " +
			src.Config.HTTP.Addr + " can push and delete")
	}
	d, err := serve.NewDaemon(src.Config, src.Path, log, level)
	if err != nil {
		return err
	}
	d.Version = Version
	if src.Path != "" {
		remove, err := pidfile.Write(src.Path)
		if err != nil {
			return err
		}
		defer remove()
	}

	// SIGINT and SIGTERM end c.Context() (see interruptible): the
	// daemon drains and stops. SIGHUP reloads it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := d.Reload(); err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}()
	return d.Run(c.Context(), nil)
}
