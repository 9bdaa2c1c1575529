package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/configsrc"
	"regctl/pkg/distconfig"
	"regctl/pkg/gc"
	"regctl/pkg/storage"
	"regctl/pkg/usage"
)

type usageOpts struct {
	*rootOpts
	by  string
	top int
}

func newUsageCmd(root *rootOpts) *cobra.Command {
	o := &usageOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "registry-usage [CONFIG]",
		Short: "Show storage used per repository or root namespace, and what GC would free",
		Long: `registry-usage reads the storage directly (filesystem or S3), as
registry-garbage-collect does, and writes nothing: it is safe while the
registry serves.

Per repository: tags, manifests, untagged manifests (those GC -m deletes),
the bytes its tagged images are made of, and the bytes only it references
(what deleting it and collecting garbage would free). Per root namespace
(--by namespace): the bytes of its tagged images with each blob counted once,
as GitLab.com counts a namespace. For the whole store: total bytes, and what
registry-garbage-collect and registry-garbage-collect -m would free.

CONFIG defaults to the config.yml rendered from the settings.`,
		Example: `  regctl registry-usage --top 20
  regctl registry-usage --by namespace
  regctl registry-usage -o json /var/opt/gitlab/registry/config.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
	c.Flags().StringVar(&o.by, "by", "repository", "group by repository or namespace")
	c.Flags().IntVar(&o.top, "top", 0, "show only the N largest (0: all)")
	return c
}

// usageResult is the JSON output.
type usageResult struct {
	Config       string             `json:"config"`
	By           string             `json:"by"`
	Repositories []usage.Repository `json:"repositories,omitempty"`
	Namespaces   []usage.Namespace  `json:"namespaces,omitempty"`
	Store        usage.Store        `json:"store"`
	Problems     []gc.Problem       `json:"problems,omitempty"`
}

func (o *usageOpts) run(c *cobra.Command, args []string) error {
	if o.by != "repository" && o.by != "namespace" {
		return usageError{fmt.Errorf("--by must be repository or namespace, not %q", o.by)}
	}
	if o.top < 0 {
		return usageError{fmt.Errorf("--top must not be negative")}
	}
	tg, err := o.openStorage(args)
	if err != nil {
		return err
	}
	ctx := c.Context()
	progress := ui.NewProgress(o.stderr)
	full, err := usage.Run(ctx, tg.drv, usage.Options{
		Log:      tg.log,
		Progress: func(ph gc.Phase, done, total int) { progress.Update(string(ph), done, total) },
	})
	progress.Done()
	if err != nil {
		return err
	}
	rep := full.Top(o.top)
	res := usageResult{Config: tg.configPath, By: o.by, Store: rep.Store, Problems: rep.Problems}
	if o.by == "repository" {
		res.Repositories = rep.Repositories
	} else {
		res.Namespaces = rep.Namespaces
	}
	p := o.printer()
	if o.json() {
		o.noteProblems("registry-usage", "problems", rep.Problems)
		return p.JSON(res)
	}
	p.Title("registry-usage")
	if o.by == "repository" {
		rows := make([][]string, 0, len(rep.Repositories))
		for _, r := range rep.Repositories {
			rows = append(rows, []string{r.Name, fmt.Sprint(r.Tags), fmt.Sprint(r.Manifests), fmt.Sprint(r.Untagged),
				ui.Bytes(r.TaggedBytes), ui.Bytes(r.ExclusiveBytes)})
		}
		p.Table([]string{"REPOSITORY", "TAGS", "MANIFESTS", "UNTAGGED", "TAGGED", "ONLY HERE"}, rows)
	} else {
		rows := make([][]string, 0, len(rep.Namespaces))
		for _, n := range rep.Namespaces {
			rows = append(rows, []string{n.Name, fmt.Sprint(n.Repositories), fmt.Sprint(n.Tags), ui.Bytes(n.Bytes)})
		}
		p.Table([]string{"NAMESPACE", "REPOSITORIES", "TAGS", "TAGGED (DEDUPLICATED)"}, rows)
	}
	if o.top > 0 && (len(full.Repositories) > o.top || len(full.Namespaces) > o.top) {
		p.Text(fmt.Sprintf("(the %d largest shown)", o.top))
	}
	s := rep.Store
	p.Field("total", fmt.Sprintf("%s in %d blobs", ui.Bytes(s.TotalBytes), s.Blobs))
	p.Field("GC would free", fmt.Sprintf("%s (%d blobs)", ui.Bytes(s.GC.Bytes), s.GC.Blobs))
	p.Field("GC -m would free", fmt.Sprintf("%s (%d blobs, %d untagged manifests)", ui.Bytes(s.GCUntagged.Bytes), s.GCUntagged.Blobs, s.GCUntagged.Manifests))
	if s.Symlinks > 0 {
		p.Field("symlinks", fmt.Sprintf("%d, never followed: nothing behind them is counted", s.Symlinks))
	}
	p.Field("took", full.Duration.Round(time.Millisecond).String())
	for _, pr := range rep.Problems {
		p.Line(ui.Warn, "problem", pr.String())
	}
	return nil
}

// target is the storage a maintenance command works on, and where it
// logs (warnings and worse, to stderr).
type target struct {
	cfg        *distconfig.Config
	configPath string
	drv        storage.Driver
	log        *slog.Logger
}

// openStorage opens the storage of CONFIG when given, else of the
// config.yml rendered from the settings.
func (o *rootOpts) openStorage(args []string) (*target, error) {
	t := &target{log: slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	configArg := ""
	if len(args) == 1 {
		configArg = args[0]
	}
	var err error
	t.cfg, t.configPath, err = configsrc.Load(configArg, o.settingsPath(), t.log)
	if err != nil {
		return nil, err
	}
	if t.drv, err = storage.Open(context.Background(), t.cfg.Storage.Driver, t.cfg.Storage.Params); err != nil {
		return nil, err
	}
	if cp, ok := storage.As[storage.ConnectionPool](t.drv); ok {
		// The scan keeps 32 requests in flight; S3's SDK keeps 10 idle.
		t.drv = cp.WithConnections(64)
	}
	return t, nil
}
