package cmd

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/cleanup"
	"regctl/pkg/configsrc"
	"regctl/pkg/distconfig"
	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
)

type cleanupOpts struct {
	*rootOpts
	dryRun        bool
	policy        string
	repository    string
	explain       string
	registry      string
	username      string
	passwordStdin bool
	concurrency   int
	requests      int
}

func newCleanupCmd(root *rootOpts) *cobra.Command {
	o := &cleanupOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "registry-cleanup [CONFIG]",
		Short: "Delete tags as the settings' cleanup policies say (GitLab's algorithm)",
		Long: `registry-cleanup applies the [[registry.cleanup_policies]] of the settings
file, GitLab's tag cleanup policies, as GitLab runs them. Each
repository takes the first policy whose glob matches it; disabled policies
run only when named with --policy. For each repository:

  1. all tags, less latest and less the referrers tags (sha256-<hex>, an
     image's list of signatures and SBOMs), which GitLab would delete;
  2. those matching \A(?:name_regex)\z and not \A(?:name_regex_keep)\z
     (an unset name_regex matches nothing, so nothing is deleted);
  3. sorted by the image config's "created", newest first (no date counts
     as now), less the first keep_n;
  4. those older than older_than (a tag with no date, or a multi-arch tag,
     is never deleted by age);
  5. deleted, by tag: DELETE /v2/<name>/manifests/<tag>.

It works through the registry's HTTP API: by default the daemon of the
rendered config.yml (or CONFIG), with a token minted from the internal key
when token auth is on; --registry targets any registry. Deleting tags frees
no space by itself: run registry-garbage-collect -m afterwards.`,
		Example: `  regctl registry-cleanup --dry-run
  regctl registry-cleanup --policy weekly --repository 'group/**'
  regctl registry-cleanup --explain group/project
  echo "$PASSWORD" | regctl registry-cleanup --registry https://registry.example.com --username admin --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
	f := c.Flags()
	f.BoolVarP(&o.dryRun, "dry-run", "d", false, "show what would be deleted; delete nothing")
	f.StringVar(&o.policy, "policy", "", "only the repositories of this policy (runs it even when disabled)")
	f.StringVar(&o.repository, "repository", "", "only repositories matching this glob (group/**)")
	f.StringVar(&o.explain, "explain", "", "show, step by step, why each tag of REPOSITORY is kept or deleted; delete nothing")
	f.StringVar(&o.registry, "registry", "", "registry URL (default: the local daemon of the rendered config)")
	f.StringVar(&o.username, "username", "", "user name for --registry")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password for --username from stdin")
	f.IntVar(&o.concurrency, "concurrency", 4, "repositories worked on at once")
	f.IntVar(&o.requests, "requests", 16, "HTTP requests in flight at once")
	return c
}

// stdin is where --password-stdin reads; tests replace it.
var stdin = func() *os.File { return os.Stdin }

func (o *cleanupOpts) run(c *cobra.Command, args []string) error {
	if (o.username != "" || o.passwordStdin) && o.registry == "" {
		return usageError{errors.New("--username and --password-stdin go with --registry")}
	}
	if o.passwordStdin && o.username == "" {
		return usageError{errors.New("--password-stdin needs --username")}
	}
	if o.registry != "" && len(args) > 0 {
		return usageError{errors.New("CONFIG and --registry exclude each other")}
	}
	if o.concurrency < 1 || o.requests < 1 {
		return usageError{errors.New("--concurrency and --requests must be at least 1")}
	}
	l, err := o.loadSettings()
	if err != nil {
		return err
	}
	policies, err := cleanup.CompileAll(l.Settings.Registry.CleanupPolicies)
	if err != nil {
		return err
	}
	if len(policies) == 0 {
		return usageError{fmt.Errorf("%s has no [[registry.cleanup_policies]]: nothing to apply", l.Path)}
	}
	if o.policy != "" && !slices.ContainsFunc(policies, func(p *cleanup.Policy) bool { return p.Name == o.policy }) {
		return usageError{fmt.Errorf("--policy %q: no such policy in %s", o.policy, l.Path)}
	}
	if o.repository != "" && !cleanup.ValidGlob(o.repository) {
		return usageError{fmt.Errorf("--repository %q is not a valid glob", o.repository)}
	}
	client, cfg, err := o.client(l, args)
	if err != nil {
		return err
	}
	opts := cleanup.Options{
		Policies: policies, PolicyName: o.policy, Repository: o.repository,
		DryRun: o.dryRun, Concurrency: o.concurrency,
		Log: slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if o.explain != "" {
		return o.runExplain(c.Context(), client, opts)
	}
	if cfg != nil {
		// One cleanup or GC at a time on a storage. With --registry the
		// storage is unknown, and nothing is locked.
		opts.Storage = &cfg.Storage
	}
	progress := ui.NewProgress(o.stderr)
	opts.Progress = func(done, total int) { progress.Update("repositories", done, total) }
	rep, err := cleanup.Run(c.Context(), client, opts)
	progress.Done()
	if err != nil {
		return err
	}
	p := o.printer()
	if o.json() {
		if err := p.JSON(rep); err != nil {
			return err
		}
	} else {
		printCleanupReport(p, rep, l)
	}
	if !rep.OK() {
		return silentError{errors.New("registry-cleanup: some repositories were not cleaned")}
	}
	return nil
}

// client targets --registry, or the local daemon of the rendered config
// (returned too: its storage is what the run lock guards).
func (o *cleanupOpts) client(l *settings.Loaded, args []string) (*cleanup.Client, *distconfig.Config, error) {
	if o.registry != "" {
		var auth cleanup.Authenticator
		if o.username != "" {
			pw := ""
			if o.passwordStdin {
				line, err := bufio.NewReader(stdin()).ReadString('\n')
				if err != nil && line == "" {
					return nil, nil, fmt.Errorf("--password-stdin: %w", err)
				}
				pw = strings.TrimRight(line, "\r\n")
			}
			auth = cleanup.Password{Username: o.username, Password: pw}
		}
		cl, err := cleanup.NewClient(o.registry, auth, o.requests)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--registry: %w", err)}
		}
		return cl, nil, nil
	}
	configArg := ""
	if len(args) == 1 {
		configArg = args[0]
	}
	cfg, configPath, err := configsrc.Load(configArg, o.settingsPath(), nil)
	if err != nil {
		return nil, nil, err
	}
	cl, err := cleanup.DaemonClient(cfg, configPath, func() (crypto.Signer, error) { return reconfigure.SigningKey(l) }, o.requests)
	var needRegistry *cleanup.NeedRegistryError
	if errors.As(err, &needRegistry) {
		return nil, nil, usageError{err}
	}
	return cl, cfg, err
}

// runExplain is the admin guide's "investigate a cleanup policy": the
// tag list after each step and the reason for each tag.
func (o *cleanupOpts) runExplain(ctx context.Context, client *cleanup.Client, opts cleanup.Options) error {
	pol := cleanup.For(opts.Policies, o.explain)
	if o.policy != "" {
		pol = opts.Policies[slices.IndexFunc(opts.Policies, func(p *cleanup.Policy) bool { return p.Name == o.policy })]
	}
	if pol == nil {
		return usageError{fmt.Errorf("no policy's repositories match %q: name one with --policy", o.explain)}
	}
	rr := cleanup.Explain(ctx, client, o.explain, pol, time.Now())
	p := o.printer()
	if o.json() {
		if err := p.JSON(rr); err != nil {
			return err
		}
	} else {
		printExplain(p, rr, pol)
	}
	if rr.Error != "" {
		return silentError{errors.New("registry-cleanup --explain: " + rr.Error)}
	}
	return nil
}

func printExplain(p *ui.Printer, rr *cleanup.Repository, pol *cleanup.Policy) {
	p.Title(fmt.Sprintf("registry-cleanup --explain %s (nothing is deleted)", rr.Name))
	state := "enabled"
	if !pol.Enabled {
		state = "disabled: runs only with --policy " + pol.Name
	}
	p.Field("policy", fmt.Sprintf("%s (%s)", pol.Name, state))
	p.Field("name_regex", fmt.Sprintf("\\A(?:%s)\\z", pol.NameRegex))
	p.Field("name_regex_keep", fmt.Sprintf("\\A(?:%s)\\z", pol.NameRegexKeep))
	p.Field("keep_n", fmt.Sprint(pol.KeepN))
	age := "unset: age keeps nothing"
	if pol.HasAge {
		age = pol.OlderThan.String()
	}
	p.Field("older_than", age)
	if rr.Error != "" {
		p.Line(ui.Fail, rr.Name, rr.Error)
		return
	}
	for i, st := range rr.Plan.Steps {
		p.Line(ui.Info, fmt.Sprintf("step %d (%d)", i+1, len(st.Tags)), st.Name+": "+strings.Join(st.Tags, " "))
	}
	rows := make([][]string, 0, len(rr.Plan.Decisions))
	for _, d := range rr.Plan.Decisions {
		created := "-"
		if !d.Created.IsZero() {
			created = d.Created.UTC().Format(time.RFC3339)
		}
		if d.Index {
			created += " (multi-arch)"
		}
		verdict := "keep"
		if d.Delete {
			verdict = "DELETE"
		}
		rows = append(rows, []string{d.Name, created, verdict, string(d.Reason)})
	}
	p.Table([]string{"TAG", "CREATED", "VERDICT", "REASON"}, rows)
}

func printCleanupReport(p *ui.Printer, rep *cleanup.Report, l *settings.Loaded) {
	title := "registry-cleanup"
	verb := "deleted"
	if rep.DryRun {
		title += " (dry run: nothing deleted)"
		verb = "to delete"
	}
	p.Title(title)
	for _, rr := range rep.Repositories {
		head := fmt.Sprintf("policy %s: %d tags", rr.Policy, rr.Seen())
		if rr.Plan != nil {
			head += ", kept " + keptSummary(rr.Plan)
			del := rr.Deleted
			if rep.DryRun {
				del = rr.Plan.Delete()
			}
			head += fmt.Sprintf(", %s %d", verb, len(del))
			st := ui.OK
			if rr.Error != "" || len(rr.Failed) > 0 {
				st = ui.Fail
			}
			p.Line(st, rr.Name, head)
			if len(del) > 0 {
				p.Hint(verb + ": " + strings.Join(del, " "))
			}
		} else {
			p.Line(ui.Fail, rr.Name, head)
		}
		if len(rr.Vanished) > 0 {
			p.Hint("gone while reading, left out: " + strings.Join(rr.Vanished, " "))
		}
		for _, tag := range slices.Sorted(maps.Keys(rr.Failed)) {
			p.Hint("failed " + tag + ": " + rr.Failed[tag])
		}
		if rr.Error != "" {
			p.Hint(rr.Error)
		}
	}
	claimed := printDisabledPolicies(p, rep.Disabled, l)
	seen, deleted, failed, errs := rep.Totals()
	repos := fmt.Sprintf("%d cleaned, %d with errors, %d without any policy, %d claimed by a disabled policy",
		len(rep.Repositories)-errs, errs, rep.NoPolicy, claimed)
	if rep.Excluded > 0 {
		repos += fmt.Sprintf(", %d left out by --policy or --repository", rep.Excluded)
	}
	p.Field("repositories", repos)
	p.Field("tags", fmt.Sprintf("%d seen, %d %s, %d failed", seen, deleted, verb, failed))
	p.Field("took", rep.Duration.Round(time.Millisecond).String())
	if !rep.DryRun && deleted > 0 {
		p.Text("Tags are gone; their space comes back with `regctl registry-garbage-collect -m`.")
	}
}

// printDisabledPolicies names each disabled policy, the repositories it
// left alone and where to enable it; it returns how many repositories
// they claimed.
func printDisabledPolicies(p *ui.Printer, disabled []*cleanup.DisabledPolicy, l *settings.Loaded) (claimed int) {
	const most = 10
	for _, d := range disabled {
		claimed += len(d.Repositories)
		label := "policy " + d.Name
		if d.Name == "" {
			label = fmt.Sprintf("policy [%d]", d.Index)
		}
		st, what := ui.Info, "disabled; it claims no repository in this run"
		if n := len(d.Repositories); n > 0 {
			noun := "repositories"
			if n == 1 {
				noun = "repository"
			}
			st, what = ui.Warn, fmt.Sprintf("disabled: leaves alone %d %s: %s", n, noun,
				strings.Join(d.Repositories[:min(n, most)], " "))
			if n > most {
				what += fmt.Sprintf(" and %d more (-o json lists them all)", n-most)
			}
		}
		p.Line(st, label, what)
		hint := "to run it, set enabled = true in this policy"
		if w := l.DisabledPolicyWarning(d.Index); w != nil {
			hint += ": " + w.File
			if w.Line > 0 {
				hint += ":" + strconv.Itoa(w.Line)
			}
			hint += ", " + w.Key
		}
		if d.Name != "" {
			hint += "; or run it once with --policy " + d.Name
		}
		p.Hint(hint)
	}
	return claimed
}

// keptSummary is "3 (latest 1, keep regex 2)".
func keptSummary(plan *cleanup.Plan) string {
	counts := plan.Count()
	var parts []string
	total := 0
	for _, r := range []cleanup.Reason{cleanup.ReasonLatest, cleanup.ReasonReferrers, cleanup.ReasonNoMatch, cleanup.ReasonKeepRegex,
		cleanup.ReasonKeepN, cleanup.ReasonTooYoung, cleanup.ReasonNoDate} {
		if n := counts[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
			total += n
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
