package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/blobcache"
	"regctl/pkg/gc"
	"regctl/pkg/gcjob"
	"regctl/pkg/maintenance"
)

type gcOpts struct {
	*rootOpts
	untagged, dryRun, verbose bool
	ackTimeout, leaseTTL      time.Duration
}

func newGCCmd(root *rootOpts) *cobra.Command {
	o := &gcOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "registry-garbage-collect [CONFIG]",
		Short: "Delete blobs (and with -m untagged manifests) that nothing references",
		Long: `registry-garbage-collect deletes exactly what CNCF Distribution's
"registry garbage-collect" deletes on the same data, much faster, with one
deliberate difference: with -m it keeps the OCI referrers (signatures, SBOMs,
attestations) of every manifest it keeps.

CONFIG defaults to the config.yml rendered from the settings. The registry
does not stop: every regctl daemon on the storage switches to read-only for
the duration (pulls go on) and back afterwards, also on failure or Ctrl-C.
Other writers (CNCF Distribution, GitLab's registry) must be read-only.`,
		Example: `  regctl registry-garbage-collect            # unreferenced blobs
  regctl registry-garbage-collect -m -d      # what -m would delete, deleting nothing
  regctl registry-garbage-collect -m -v /var/opt/gitlab/registry/config.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
	f := c.Flags()
	f.BoolVarP(&o.untagged, "delete-untagged", "m", false, "also delete manifests no tag points at (their referrers are kept)")
	f.BoolVarP(&o.dryRun, "dry-run", "d", false, "report what would be deleted; delete nothing")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "list every deleted object")
	f.DurationVar(&o.ackTimeout, "ack-timeout", 2*time.Minute, "how long to wait for running daemons to switch to read-only")
	f.DurationVar(&o.leaseTTL, "lease-ttl", maintenance.DefaultLeaseTTL, "how long the cluster stays read-only, and other runs locked out, if this run dies without releasing (renewed every third of it while running)")
	return c
}

// gcResult is the JSON output.
type gcResult struct {
	Config    string        `json:"config"`
	Report    *gc.Report    `json:"report"`
	Deletions []gc.Deletion `json:"deletions,omitempty"`
	Daemons   *int          `json:"daemons_read_only,omitempty"`
	// CacheFlushed counts the keys removed from the shared redis cache.
	CacheFlushed int `json:"cache_keys_flushed,omitempty"`
}

func (o *gcOpts) run(c *cobra.Command, args []string) error {
	tg, err := o.openStorage(args)
	if err != nil {
		return err
	}
	interval, err := maintenance.ClusterHeartbeat(tg.cfg.Cluster)
	if err != nil {
		return err
	}
	cache, err := blobcache.Open(tg.cfg, tg.log)
	if err != nil {
		return err
	}
	var flushAfter func(context.Context, func(context.Context) error) (int, error)
	if cache != nil {
		defer cache.Close()
		flushAfter = func(ctx context.Context, job func(context.Context) error) (int, error) {
			return blobcache.FlushAfter(ctx, cache, job)
		}
	}

	p := o.printer()
	progress := ui.NewProgress(o.stderr)
	res := gcResult{Config: tg.configPath}
	run, err := gcjob.Run(c.Context(), tg.drv, gcjob.Options{
		Collect: gc.Options{
			RemoveUntagged: o.untagged,
			DryRun:         o.dryRun,
			Log:            tg.log,
			Progress:       func(ph gc.Phase, done, total int) { progress.Update(string(ph), done, total) },
			OnDelete: func(d gc.Deletion) {
				if o.json() {
					res.Deletions = append(res.Deletions, d)
				} else if o.verbose {
					progress.Done()
					fmt.Fprintln(o.stdout, deletionLine(d, o.dryRun))
				}
			},
		},
		Storage:    tg.cfg.Storage,
		Heartbeat:  interval,
		AckTimeout: o.ackTimeout,
		LeaseTTL:   o.leaseTTL,
		FlushAfter: flushAfter,
		OnReadOnly: func(w maintenance.WaitResult) {
			if o.json() {
				return
			}
			if w.NoDaemons() {
				p.Line(ui.Warn, "writers", "no regctl daemon runs on this storage: other writers (CNCF Distribution, GitLab's registry) must be read-only or stopped")
			} else {
				p.Line(ui.OK, "read-only", fmt.Sprintf("%d regctl daemon(s) switched to read-only; pulls go on", w.Acked))
			}
		},
		Collected: progress.Done,
		Log:       tg.log,
	})
	res.Report, res.Daemons, res.CacheFlushed = run.Report, run.Daemons, run.CacheFlushed
	switch {
	case errors.Is(err, maintenance.ErrRunInProgress):
		return err
	case err != nil:
		return gcFailure(err, c.Context().Err() != nil, o.dryRun || res.Report == nil)
	}
	if o.json() {
		o.noteProblems("registry-garbage-collect", "report.Problems", res.Report.Problems)
		return p.JSON(res)
	}
	printGCReport(p, res.Report)
	if cache != nil && !o.dryRun {
		p.Field("redis cache", fmt.Sprintf("flushed (%d keys)", res.CacheFlushed))
	}
	return nil
}

// gcFailure adds what the user needs to know to a failed run: an
// interrupted or failed collection deleted only in the safe order, and
// the daemons take writes again (the job released the lease, or says
// when it expires).
func gcFailure(err error, interrupted, nothingDeleted bool) error {
	if interrupted {
		err = fmt.Errorf("interrupted: %w", err)
	}
	if nothingDeleted {
		return err
	}
	return fmt.Errorf("%w\nhint: every tagged image and its referrers are intact; run registry-garbage-collect again to finish", err)
}

func deletionLine(d gc.Deletion, dryRun bool) string {
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	parts := []string{verb, d.Kind}
	if d.Repository != "" {
		parts = append(parts, d.Repository)
	}
	if d.Tag != "" {
		parts = append(parts, "tag "+d.Tag)
	}
	parts = append(parts, d.Digest.String())
	return strings.Join(parts, " ")
}

func printGCReport(p *ui.Printer, r *gc.Report) {
	title := "registry-garbage-collect"
	verb := "deleted"
	if r.DryRun {
		title += " (dry run: nothing deleted)"
		verb = "would be deleted"
	}
	p.Title(title)
	p.Field("repositories", fmt.Sprint(r.Repositories))
	p.Field("marked", fmt.Sprintf("%d manifests, %d blobs", r.ManifestsMarked, r.BlobsMarked))
	p.Field(verb, fmt.Sprintf("%d manifests, %d blobs, %d layer links, %d tag index entries",
		r.ManifestsDeleted, r.BlobsDeleted, r.LayerLinksDeleted, r.TagIndexEntriesDeleted))
	p.Field("bytes freed", humanBytes(r.BytesFreed))
	if r.ReferrersKept > 0 {
		p.Field("referrers kept", fmt.Sprintf("%d (Distribution's -m would delete them)", r.ReferrersKept))
	}
	if r.LayerLinksKept > 0 {
		p.Field("layer links kept", fmt.Sprintf("%d (needed by manifests kept in their repository; Distribution would delete them)", r.LayerLinksKept))
	}
	if r.OrphanRepositories > 0 {
		p.Field("emptied repositories", fmt.Sprintf("%d (no manifests left; their links to collected blobs go)", r.OrphanRepositories))
	}
	if r.ManifestsFromCache > 0 {
		p.Field("manifest cache", fmt.Sprintf("%d manifests known from an earlier run, not read again", r.ManifestsFromCache))
	}
	if r.Symlinks > 0 {
		p.Field("symlinks", fmt.Sprintf("%d, never followed: nothing behind them was read or deleted", r.Symlinks))
	}
	p.Field("took", r.Duration.Round(time.Millisecond).String())
	for _, pr := range r.Problems {
		p.Line(ui.Warn, "problem", pr.String())
	}
}

// noteProblems puts one line on stderr when a -o json run met problems
// (listed in the JSON at key).
// The JSON lists them, but it often goes to a file, and stderr is what an
// admin running the command from cron is mailed. The line counts them by
// kind and does not repeat them: each problem is shown once, in the
// report (the text report lists them itself).
func (o *rootOpts) noteProblems(command, key string, ps []gc.Problem) {
	if len(ps) == 0 {
		return
	}
	var kinds []string
	count := map[string]int{}
	for _, p := range ps {
		if count[p.Kind] == 0 {
			kinds = append(kinds, p.Kind)
		}
		count[p.Kind]++
	}
	slices.Sort(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	msg := fmt.Sprintf("%s met %d problem(s) (%s); the JSON output lists them in %s",
		command, len(ps), strings.Join(kinds, ", "), key)
	fmt.Fprintln(o.stderr, ui.WarningText(o.stderr, o.noColor, msg))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
