package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/distconfig"
	"regctl/pkg/migrate"
	"regctl/pkg/rollout"
	"regctl/pkg/settings"
	"regctl/pkg/storage"
)

type migrateOpts struct {
	*rootOpts
	dryRun, delete, cutover, verbose  bool
	verify                            string
	bucket, region, endpoint, rootdir string
	concurrency                       int
	readOnlyTimeout                   time.Duration
	plainEvery                        time.Duration
}

func newMigrateCmd(root *rootOpts) *cobra.Command {
	o := &migrateOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "migrate-storage [flags] [CONFIG]",
		Short: "Copy the filesystem storage into S3, verify it, or cut the registry over",
		Long: `migrate-storage copies a registry's filesystem storage into the S3 bucket
that [migration.s3] in the settings names (flags may override bucket, region,
endpoint and rootdirectory). The source is the filesystem storage of CONFIG,
by default the config.yml that reconfigure rendered. Keys land where
Distribution's and regctl's s3 drivers read them: rootdirectory +
/docker/registry/v2/...

By default it is an incremental sync: it copies what is new or changed and
can be run again at any time; a killed run resumes without copying again
what is there. Uploads in progress (_uploads) and regctl's node state
(/docker/registry/v2/_regctl) are not copied.

  --dry-run      list what would be copied and deleted; change nothing
  --delete       also remove bucket objects the source does not have, once
                 every copy succeeded; refused for an empty source
  --verify       compare only: key sets, sizes, links by content, every blob
                 re-hashed against its digest (--verify=quick: sizes only)
  --cutover      the whole switch: sync, read-only, final sync with delete,
                 verify, settings switched to s3, read-write; any failure
                 rolls back to read-write on the filesystem`,
		Example: `  regctl migrate-storage --dry-run
  regctl migrate-storage                        # sync; run it again to catch up
  regctl migrate-storage --verify
  regctl migrate-storage --cutover
  regctl migrate-storage --bucket other --rootdirectory /registry /var/opt/gitlab/registry/config.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
	f := c.Flags()
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "list what would be copied and deleted; change nothing")
	f.BoolVar(&o.delete, "delete", false, "remove bucket objects that are not in the source (after every copy succeeded)")
	f.StringVar(&o.verify, "verify", "", "compare source and bucket only: full (the default) or quick (sizes only)")
	f.Lookup("verify").NoOptDefVal = migrate.VerifyFull
	f.BoolVar(&o.cutover, "cutover", false, "sync, read-only, final sync with delete, verify, switch the settings to s3, read-write")
	f.StringVar(&o.bucket, "bucket", "", "bucket (overrides [migration.s3] bucket)")
	f.StringVar(&o.region, "region", "", "region (overrides [migration.s3] region)")
	f.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint URL (overrides [migration.s3] regionendpoint)")
	f.StringVar(&o.rootdir, "rootdirectory", "", "key prefix in the bucket (overrides [migration.s3] rootdirectory)")
	f.IntVar(&o.concurrency, "concurrency", migrate.DefaultConcurrency, "requests at once")
	f.DurationVar(&o.readOnlyTimeout, "readonly-timeout", 2*time.Minute, "cutover: how long to wait for every regctl daemon to switch to read-only")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log the run's milestones, not only warnings")
	o.plainEvery = 10 * time.Second
	return c
}

func (o *migrateOpts) run(c *cobra.Command, args []string) error {
	switch {
	case o.verify != "" && o.verify != migrate.VerifyFull && o.verify != migrate.VerifyQuick:
		return usageError{fmt.Errorf("--verify must be full or quick, not %q", o.verify)}
	case o.verify != "" && !o.cutover && (o.delete || o.dryRun):
		return usageError{errors.New("--verify only compares: it takes neither --delete nor --dry-run")}
	case o.cutover && o.dryRun:
		return usageError{errors.New("--cutover cannot be a dry run: run --dry-run without --cutover to see what it would copy")}
	case o.concurrency < 1:
		return usageError{errors.New("--concurrency must be at least 1")}
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: level}))

	l, err := o.loadSettings()
	if err != nil && !(errors.Is(err, settings.ErrNoSettings) && len(args) == 1 && !o.cutover) {
		return err
	}
	configPath := ""
	if l != nil {
		configPath = l.Resolve().ConfigYML
	}
	if len(args) == 1 {
		abs, err := filepath.Abs(args[0])
		if err != nil {
			return err
		}
		if o.cutover && abs != configPath {
			return usageError{fmt.Errorf("--cutover switches the registry the settings describe: its config is %s, not %s", configPath, abs)}
		}
		configPath = abs
	}
	root, err := sourceRoot(configPath, log)
	if err != nil {
		return err
	}
	if o.cutover && filepath.Clean(root) != l.Resolve().StorageRoot {
		return fmt.Errorf("%s serves %s but the settings say %s: run regctl reconfigure first", configPath, root, l.Resolve().StorageRoot)
	}

	params := map[string]any{}
	if l != nil {
		maps.Copy(params, l.Settings.Migration.S3)
	}
	for k, v := range map[string]string{"bucket": o.bucket, "region": o.region, "regionendpoint": o.endpoint, "rootdirectory": o.rootdir} {
		if v != "" {
			params[k] = v
		}
	}
	if params["bucket"] == nil || params["region"] == nil {
		return usageError{errors.New("no target bucket: set bucket and region in [migration.s3] of the settings, or pass --bucket and --region")}
	}

	ctx := c.Context()
	target, err := storage.NewS3WithOptions(ctx, params, storage.S3Options{Setting: "migration.s3", Logger: log})
	if err != nil {
		return err
	}
	opts := migrate.Options{
		SourceRoot: root, Target: target, Concurrency: o.concurrency,
		DryRun: o.dryRun, Delete: o.delete, Log: log,
	}
	p := o.printer()
	prog := newMigrateProgress(o)
	opts.Progress = prog.update
	defer prog.done()

	switch {
	case o.cutover:
		return o.runCutover(ctx, p, prog, opts, l, params)
	case o.verify != "":
		return o.runVerify(ctx, p, prog, opts)
	default:
		return o.runSync(ctx, p, prog, opts)
	}
}

// sourceRoot is the local folder of a config.yml's storage (the
// filesystem's rootdirectory).
func sourceRoot(configPath string, log *slog.Logger) (string, error) {
	cfg, err := distconfig.Load(configPath, log)
	if err != nil {
		return "", err
	}
	root, ok := storage.LocalRoot(cfg.Storage.Driver, cfg.Storage.Params)
	if !ok {
		return "", fmt.Errorf("%s: the storage is %s: migrate-storage copies a filesystem storage into S3", configPath, cfg.Storage.Driver)
	}
	return filepath.Abs(root)
}

// migrateProgress draws the bar on a terminal, and otherwise prints a
// plain line every plainEvery (not with --output json), both on stderr.
type migrateProgress struct {
	o     *migrateOpts
	bar   *ui.Progress
	mu    sync.Mutex
	last  time.Time
	phase string
	off   bool
}

func newMigrateProgress(o *migrateOpts) *migrateProgress {
	return &migrateProgress{o: o, bar: ui.NewProgress(o.stderr), last: time.Now()}
}

func (m *migrateProgress) update(p migrate.Progress) {
	s := ui.TransferStats{Phase: p.Phase, Objects: p.Objects, ObjectsTotal: p.ObjectsTotal, Bytes: p.Bytes, BytesTotal: p.BytesTotal, Listed: p.Listed, Elapsed: p.Elapsed}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.off {
		return
	}
	if m.bar.Active() {
		m.bar.Transfer(s)
		if p.Done {
			m.bar.Done()
		}
		return
	}
	if m.o.json() {
		return // the result says it all; stderr stays quiet for scripts
	}
	if p.Done || p.Phase != m.phase || time.Since(m.last) >= m.o.plainEvery {
		m.last, m.phase = time.Now(), p.Phase
		fmt.Fprintf(m.o.stderr, "%s %s: %s\n", time.Now().Format("15:04:05"), p.Phase, ui.TransferLine(s))
	}
}

// pause stops drawing (lines of output go to the terminal meanwhile).
func (m *migrateProgress) pause() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bar.Done()
}

func (m *migrateProgress) done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bar.Done()
	m.off = true
}

func (o *migrateOpts) runSync(ctx context.Context, p *ui.Printer, prog *migrateProgress, opts migrate.Options) error {
	var plan []migrate.PlanItem
	var pmu sync.Mutex
	if o.dryRun {
		opts.Plan = func(it migrate.PlanItem) {
			pmu.Lock()
			defer pmu.Unlock()
			if o.json() {
				plan = append(plan, it)
				return
			}
			prog.pause()
			fmt.Fprintf(p.Out, "would %-6s %s  %s  (%s)\n", it.Action, it.Path, ui.Bytes(it.Size), it.Reason)
		}
	}
	res, err := migrate.Sync(ctx, opts)
	prog.done()
	if res == nil {
		return err
	}
	if o.json() {
		out := map[string]any{"result": res}
		if o.dryRun {
			if plan == nil {
				plan = []migrate.PlanItem{}
			}
			out["plan"] = plan
		}
		if err != nil {
			out["error"] = err.Error()
		}
		if jerr := p.JSON(out); jerr != nil {
			return jerr
		}
		return err
	}
	printSync(p, res)
	return err
}

func printSync(p *ui.Printer, r *migrate.Result) {
	title := "migrate-storage: " + r.Source + " -> " + r.Target
	verb := "copied"
	del := "deleted"
	if r.DryRun {
		title += " (dry run: nothing changed)"
		verb, del = "to copy", "to delete"
	}
	p.Title(title)
	rows := [][]string{
		{"in the source", fmt.Sprint(r.SourceObjects), ui.Bytes(r.SourceBytes)},
		{verb, fmt.Sprint(r.Copied), ui.Bytes(r.CopiedBytes)},
		{"unchanged", fmt.Sprint(r.Unchanged), ""},
	}
	if r.Delete {
		rows = append(rows, []string{del, fmt.Sprint(r.Deleted), ui.Bytes(r.DeletedBytes)})
	}
	rows = append(rows, []string{"failed", fmt.Sprint(r.Failed), ""})
	if r.Vanished > 0 {
		rows = append(rows, []string{"vanished", fmt.Sprint(r.Vanished), ""})
	}
	if r.ResumedParts > 0 {
		rows = append(rows, []string{"parts resumed", fmt.Sprint(r.ResumedParts), ""})
	}
	p.Table([]string{"objects", "count", "bytes"}, rows)
	secs := r.Duration.Seconds()
	p.Field("took", fmt.Sprintf("%s (%s/s, %.0f objects/s)", r.Duration.Round(100*time.Millisecond),
		ui.Bytes(int64(float64(r.CopiedBytes)/max(secs, 0.001))), float64(r.SourceObjects)/max(secs, 0.001)))
	if !r.Delete && r.Orphans > 0 {
		p.Line(ui.Info, "orphans", fmt.Sprintf("%d objects in the bucket are not in the source; --delete removes them", r.Orphans))
	}
	if r.Symlinks > 0 {
		p.Line(ui.Warn, "symlinks", fmt.Sprintf("%d symbolic links in the source, never followed: nothing behind them was copied, and the bucket keeps what it held there", r.Symlinks))
		for _, l := range r.SymlinkPaths {
			p.Line(ui.Warn, "symlink", l)
		}
		if r.Symlinks > int64(len(r.SymlinkPaths)) {
			p.Text(fmt.Sprintf("(%d more; the log names each)", r.Symlinks-int64(len(r.SymlinkPaths))))
		}
	}
	if r.Markers > 0 && !r.Delete {
		p.Line(ui.Warn, "markers", fmt.Sprintf("%d 0-byte folder markers in the bucket (registries have shown them as tags with an empty name); --delete removes them", r.Markers))
	}
	for _, e := range r.Errors {
		p.Line(ui.Fail, "error", e)
	}
	if r.Failed > int64(len(r.Errors)) {
		p.Text(fmt.Sprintf("(%d more errors; run with -v for all)", r.Failed-int64(len(r.Errors))))
	}
}

func (o *migrateOpts) runVerify(ctx context.Context, p *ui.Printer, prog *migrateProgress, opts migrate.Options) error {
	res, err := migrate.Verify(ctx, opts, o.verify)
	prog.done()
	if res == nil {
		return err
	}
	if o.json() {
		out := map[string]any{"verify": res, "ok": res.OK() && err == nil}
		if err != nil {
			out["error"] = err.Error()
		}
		if jerr := p.JSON(out); jerr != nil {
			return jerr
		}
	} else {
		printVerify(p, res)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return silentError{errors.New("verification found differences")}
	}
	return nil
}

func printVerify(p *ui.Printer, r *migrate.VerifyResult) {
	p.Title("migrate-storage --verify=" + r.Mode + ": " + r.Source + " -> " + r.Target)
	p.Table([]string{"check", "count"}, [][]string{
		{"source objects", fmt.Sprint(r.SourceObjects)},
		{"bucket objects", fmt.Sprint(r.TargetObjects)},
		{"read back", fmt.Sprint(r.Checked)},
		{"missing", fmt.Sprint(r.Missing)},
		{"extra", fmt.Sprint(r.Extra)},
		{"size mismatch", fmt.Sprint(r.Size)},
		{"content mismatch", fmt.Sprint(r.Content)},
		{"digest mismatch", fmt.Sprint(r.Digest)},
		{"0-byte markers", fmt.Sprint(r.Markers)},
		{"unreadable", fmt.Sprint(r.Errors)},
		{"symbolic links", fmt.Sprint(r.Symlinks)},
	})
	p.Field("took", r.Duration.Round(100*time.Millisecond).String())
	for i, pr := range r.Problems {
		if i == 20 {
			p.Text(fmt.Sprintf("(%d more; -o json lists up to 200)", len(r.Problems)-20))
			break
		}
		p.Line(ui.Fail, pr.Kind, pr.Path+": "+pr.Detail)
	}
	if r.OK() {
		p.Line(ui.OK, "verify", "the bucket mirrors the source")
	}
}

func (o *migrateOpts) runCutover(ctx context.Context, p *ui.Printer, prog *migrateProgress, opts migrate.Options, l *settings.Loaded, params map[string]any) error {
	mode := o.verify
	if mode == "" {
		mode = migrate.VerifyFull
	}
	if !o.json() {
		p.Title("migrate-storage --cutover: " + opts.SourceRoot + " -> " + storage.Describe(opts.Target))
	}
	co := migrate.CutoverOptions{
		Options: opts, Settings: l, StorageS3: params, VerifyMode: mode, ReadOnlyTimeout: o.readOnlyTimeout, Apply: rollout.ReloadOnly,
		Step: func(s migrate.Step) {
			if o.json() || s.Status == "running" {
				return
			}
			prog.pause()
			st := ui.OK
			if s.Status == "failed" {
				st = ui.Fail
			}
			p.Line(st, s.Name, fmt.Sprintf("%s (%s)", s.Detail, s.Duration.Round(100*time.Millisecond)))
		},
	}
	res, err := migrate.Cutover(ctx, co)
	prog.done()
	if res == nil {
		return err
	}
	if o.json() {
		if jerr := p.JSON(res); jerr != nil {
			return jerr
		}
		return err
	}
	switch {
	case res.RolledBack:
		p.Line(ui.Warn, "rolled back", "the registry is on the filesystem storage again, as before; nothing was lost")
	case err == nil:
		p.Line(ui.OK, "cutover", "the settings now use "+storage.Describe(opts.Target))
		if res.RestartNeeded {
			p.Hint(fmt.Sprintf("restart regctl serve (pid %d) to serve from S3: until then it serves the old storage, read-only", res.DaemonPID))
		} else {
			p.Hint("start the registry on " + res.Config)
		}
	}
	return err
}
