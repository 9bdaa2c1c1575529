package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
)

func newReadonlyCmd(root *rootOpts) *cobra.Command {
	c := &cobra.Command{
		Use:   "registry-readonly",
		Short: "Turn the registry's read-only maintenance mode on or off",
		Long: `registry-readonly sets [registry.storage.maintenance.readonly] enabled in
the settings file, changing only that line (or adding it), and runs
reconfigure. Pulls keep working in read-only mode; pushes and deletes are
refused. Restart a running registry to apply the rendered config.yml.

With --cluster, enable takes the maintenance lease in the storage instead:
every regctl daemon on that storage (all nodes on one bucket) refuses
writes within one heartbeat, without a settings change or restart, and the
command waits until each has acknowledged. Nothing renews such a lease: it
lasts until "disable --cluster" or until --ttl (default 24h) has passed.`,
		Example: `  regctl registry-readonly enable
  regctl registry-readonly status
  regctl registry-readonly disable
  regctl registry-readonly enable --cluster --ttl 4h --reason "storage migration"
  regctl registry-readonly disable --cluster`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	for _, on := range []bool{true, false} {
		c.AddCommand(newReadonlySetCmd(root, on))
	}
	c.AddCommand(&cobra.Command{
		Use:     "status",
		Short:   "Show whether read-only mode is on and where that comes from",
		Example: "  regctl registry-readonly status -o json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := root.loadSettings()
			if err != nil {
				return err
			}
			st, err := reconfigure.ReadOnlyStatus(l)
			if err != nil {
				return err
			}
			p := root.printer()
			cl := readClusterState(c.Context(), root)
			if root.json() {
				return p.JSON(struct {
					reconfigure.ReadOnlyState
					Cluster clusterState `json:"cluster"`
				}{st, cl})
			}
			defer printClusterState(p, cl)
			state := "disabled (read-write)"
			if st.Enabled {
				state = "enabled (pulls only)"
			}
			p.Line(ui.Info, "read-only", state)
			p.Field("set by", st.Source+" ("+st.Key+")")
			switch {
			case st.Rendered == nil:
				p.Line(ui.Warn, "config.yml", st.ConfigYML+" does not exist: run `regctl reconfigure`")
			case !st.InSync:
				p.Line(ui.Warn, "config.yml", fmt.Sprintf("%s still says enabled: %v: run `regctl reconfigure`", st.ConfigYML, *st.Rendered))
			default:
				p.Line(ui.OK, "config.yml", st.ConfigYML+" agrees")
			}
			return nil
		},
	})
	return c
}

func newReadonlySetCmd(root *rootOpts, on bool) *cobra.Command {
	use, short := "disable", "Leave read-only mode: accept pushes and deletes again"
	if on {
		use, short = "enable", "Enter read-only mode: serve pulls, refuse pushes and deletes"
	}
	co := &clusterReadonlyOpts{rootOpts: root, on: on}
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  regctl registry-readonly " + use + "\n  regctl registry-readonly " + use + " --cluster",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if co.cluster {
				return co.run(c.Context())
			}
			l, err := root.loadSettings()
			if err != nil {
				return err
			}
			updated, changed, err := settings.SetReadOnly(l, on)
			if err != nil {
				return err
			}
			res, err := reconfigure.Run(updated, reconfigure.Options{})
			if err != nil {
				return err
			}
			reload := reloadDaemon(updated)
			p := root.printer()
			if root.json() {
				return p.JSON(map[string]any{"read_only": on, "settings_changed": changed, "reconfigure": res, "reload": reload})
			}
			what := "unchanged (already " + use + "d)"
			if changed {
				what = fmt.Sprintf("%s: set %s = %v", l.Path, settings.ReadOnlyKeyName(), on)
			}
			p.Line(ui.Info, "settings", what)
			if err := printResult(p, res); err != nil {
				return err
			}
			reload.print(p)
			return nil
		},
	}
	co.flags(c)
	return c
}
