package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"regctl/pkg/distconfig"
)

// Options tune Run.
type Options struct {
	// Policies are the settings' policies, in order.
	Policies []*Policy
	// PolicyName, when set, limits the run to repositories whose policy
	// it is, and runs that policy even when it is disabled.
	PolicyName string
	// Repository, when set, is a glob limiting the repositories.
	Repository string
	// DryRun deletes nothing.
	DryRun bool
	// Concurrency is how many repositories are worked on at once (0: 4).
	Concurrency int
	// Now is the time ages count from; zero means time.Now().
	Now time.Time
	// Log receives a line per repository (Info) and trouble releasing
	// the run lock (Warn); nil discards.
	Log *slog.Logger
	// Progress, when set, is called as repositories finish.
	Progress func(done, total int)
	// Storage, when known, is the storage of the registry cleaned: a
	// run that deletes holds its run lock from start to end, so that
	// no other cleanup and no garbage collection runs meanwhile. Nil
	// (a registry given by URL) locks nothing.
	Storage *distconfig.Storage
}

// Repository is what happened to one repository.
type Repository struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Plan is nil when the repository failed before its tags were judged.
	Plan    *Plan    `json:"plan,omitempty"`
	Deleted []string `json:"deleted,omitempty"`
	// Failed maps tags whose deletion failed to the error.
	Failed map[string]string `json:"failed,omitempty"`
	// Error is why the repository was not (fully) cleaned.
	Error string `json:"error,omitempty"`
	// Vanished lists tags that were listed but whose manifest was gone by
	// the time it was read (deleted meanwhile, or a push still writing
	// it): they are left out of the plan, which only deletes less.
	Vanished []string `json:"vanished,omitempty"`
}

// Seen is the number of tags listed.
func (r *Repository) Seen() int {
	if r.Plan == nil {
		return 0
	}
	return len(r.Plan.Decisions)
}

// Report is a run's outcome.
type Report struct {
	DryRun       bool          `json:"dry_run"`
	Now          time.Time     `json:"now"`
	Repositories []*Repository `json:"repositories"`
	// Skipped counts the catalog repositories left alone: NoPolicy,
	// Excluded and the repositories of Disabled together.
	Skipped int `json:"skipped"`
	// NoPolicy counts repositories no policy's glob matches.
	NoPolicy int `json:"no_policy"`
	// Excluded counts repositories that Options.Repository leaves out,
	// or whose policy is another than Options.PolicyName.
	Excluded int `json:"excluded"`
	// Disabled lists every disabled policy, in settings order, with the
	// repositories it claims in this run (those it is the first match
	// of): it leaves them alone, and keeps later policies off them. Empty
	// when PolicyName is set: that policy runs, disabled or not.
	Disabled []*DisabledPolicy `json:"disabled,omitempty"`
	Duration time.Duration     `json:"duration_ns"`
}

// DisabledPolicy is a policy without enabled = true, and what it left
// alone.
type DisabledPolicy struct {
	Name string `json:"name"`
	// Index is its position in Options.Policies, which is its index in
	// registry.cleanup_policies.
	Index int `json:"index"`
	// Repositories it claims in this run, in catalog order.
	Repositories []string `json:"repositories"`
}

// Totals sums the repositories: tags seen, deleted (in a dry run: to
// delete), failed, and repositories with an error.
func (r *Report) Totals() (seen, deleted, failed, repoErrors int) {
	for _, rr := range r.Repositories {
		seen += rr.Seen()
		if r.DryRun && rr.Plan != nil && rr.Error == "" {
			deleted += len(rr.Plan.Delete())
		} else {
			deleted += len(rr.Deleted)
		}
		failed += len(rr.Failed)
		if rr.Error != "" {
			repoErrors++
		}
	}
	return
}

// OK tells whether every repository was cleaned as planned.
func (r *Report) OK() bool {
	_, _, failed, errs := r.Totals()
	return failed == 0 && errs == 0
}

// Select is the policy that applies to a repository under opts, nil when
// none does.
func Select(opts Options, repo string) *Policy {
	if p, why := selectPolicy(opts, repo); why == applies {
		return p
	}
	return nil
}

// selection is why a repository is cleaned or left alone.
type selection int

const (
	applies  selection = iota
	noPolicy           // no policy's glob matches
	excluded           // left out by Options.Repository or Options.PolicyName
	disabled           // its policy (returned) is disabled
)

func selectPolicy(opts Options, repo string) (*Policy, selection) {
	if opts.Repository != "" && !MatchGlobs([]string{opts.Repository}, repo) {
		return nil, excluded
	}
	p := For(opts.Policies, repo)
	switch {
	case p == nil:
		return nil, noPolicy
	case opts.PolicyName != "":
		if p.Name != opts.PolicyName {
			return nil, excluded
		}
	case !p.Enabled:
		return p, disabled
	}
	return p, applies
}

// run is Run, without the run lock.
func run(ctx context.Context, cl *Client, opts Options) (*Report, error) {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = start
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{DryRun: opts.DryRun, Now: opts.Now}
	repos, err := cl.Repositories(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing repositories: %w", err)
	}
	type job struct {
		name string
		pol  *Policy
	}
	var jobs []job
	off := map[*Policy]*DisabledPolicy{}
	if opts.PolicyName == "" {
		for i, p := range opts.Policies {
			if !p.Enabled {
				d := &DisabledPolicy{Name: p.Name, Index: i, Repositories: []string{}}
				off[p] = d
				rep.Disabled = append(rep.Disabled, d)
			}
		}
	}
	for _, name := range repos {
		p, why := selectPolicy(opts, name)
		switch why {
		case applies:
			jobs = append(jobs, job{name, p})
			continue
		case noPolicy:
			rep.NoPolicy++
		case excluded:
			rep.Excluded++
		case disabled:
			off[p].Repositories = append(off[p].Repositories, name)
		}
		rep.Skipped++
	}
	rep.Repositories = make([]*Repository, len(jobs))
	var (
		mu   sync.Mutex
		done int
	)
	if opts.Progress != nil {
		opts.Progress(0, len(jobs))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, cmpOr(opts.Concurrency, 4)))
	for i, j := range jobs {
		g.Go(func() error {
			rr := cleanRepository(gctx, cl, j.name, j.pol, opts, false)
			rep.Repositories[i] = rr
			opts.Log.Info("cleanup", "repository", j.name, "policy", j.pol.Name, "seen", rr.Seen(), "deleted", len(rr.Deleted), "error", rr.Error)
			mu.Lock()
			done++
			if opts.Progress != nil {
				opts.Progress(done, len(jobs))
			}
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	rep.Duration = time.Since(start)
	return rep, ctx.Err()
}

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// Explain judges one repository under pol, with every tag's date, and
// deletes nothing: the admin guide's "investigate a cleanup policy".
func Explain(ctx context.Context, cl *Client, repo string, pol *Policy, now time.Time) *Repository {
	return cleanRepository(ctx, cl, repo, pol, Options{DryRun: true, Now: now}, true)
}

// cleanRepository lists, dates, judges and (unless a dry run) deletes.
// allDates fetches the date of every tag, not only of those a date can
// decide.
func cleanRepository(ctx context.Context, cl *Client, name string, pol *Policy, opts Options, allDates bool) *Repository {
	rr := &Repository{Name: name, Policy: pol.Name}
	names, err := cl.Tags(ctx, name)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	tags, vanished, err := dateTags(ctx, cl, name, names, pol, allDates)
	rr.Vanished = vanished
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	rr.Plan = Evaluate(tags, pol, opts.Now)
	if opts.DryRun {
		return rr
	}
	for i, tag := range rr.Plan.Delete() {
		err := cl.DeleteTag(ctx, name, tag)
		switch {
		case err == nil:
			rr.Deleted = append(rr.Deleted, tag)
		case i == 0 && errors.Is(err, ErrTagDeleteRefused):
			// Nothing is deleted yet: leave the repository alone.
			rr.Error = fmt.Sprintf("%v; nothing deleted in this repository (tags are never deleted by manifest digest, which other tags may share)", err)
			return rr
		default:
			if rr.Failed == nil {
				rr.Failed = map[string]string{}
			}
			rr.Failed[tag] = err.Error()
		}
	}
	return rr
}

// dateTags fetches the dates the algorithm needs: those of tags that pass
// the regexes, when there are more of them than keep_n (else none is
// judged by date); all with allDates. Shared manifests are read once.
//
// A tag whose manifest answers "unknown" was deleted after the listing,
// or is a push still in progress (a registry may list a tag before its
// current link is written): it is left out and returned in vanished.
func dateTags(ctx context.Context, cl *Client, repo string, names []string, pol *Policy, allDates bool) (tags []Tag, vanished []string, err error) {
	tags = make([]Tag, len(names))
	gone := make([]bool, len(names))
	var need []int
	for i, n := range names {
		tags[i].Name = n
		if allDates || pol.candidate(n) {
			need = append(need, i)
		}
	}
	if !allDates && len(need) <= pol.KeepN {
		return tags, nil, nil
	}
	d := &dater{cl: cl, repo: repo, memo: map[string]*dated{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(cl.sem))
	for _, i := range need {
		g.Go(func() error {
			m, err := cl.GetManifest(gctx, repo, tags[i].Name)
			if isManifestUnknown(err) {
				gone[i] = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("tag %s: %w", tags[i].Name, err)
			}
			tags[i].Digest = m.Digest
			tags[i].Index = m.IsIndex()
			tags[i].Created, err = d.date(gctx, m)
			if err != nil {
				return fmt.Errorf("tag %s: %w", tags[i].Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	kept := tags[:0]
	for i, t := range tags {
		if gone[i] {
			vanished = append(vanished, t.Name)
		} else {
			kept = append(kept, t)
		}
	}
	return kept, vanished, nil
}

// isManifestUnknown tells a 404 MANIFEST_UNKNOWN answer.
func isManifestUnknown(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound && he.Code == "MANIFEST_UNKNOWN"
}

// candidate tells whether a tag passes steps 1 and 2.
func (p *Policy) candidate(tag string) bool {
	return tag != "latest" && !IsReferrersTag(tag) && p.del.MatchString(tag) && !p.keep.MatchString(tag)
}

// dater finds manifests' dates, each once.
type dater struct {
	cl   *Client
	repo string
	mu   sync.Mutex
	memo map[string]*dated
}

type dated struct {
	once sync.Once
	t    time.Time
	err  error
}

// date is an image's config "created"; for an index, the newest among
// its platform images.
func (d *dater) date(ctx context.Context, m *Manifest) (time.Time, error) {
	key := m.Digest
	if key == "" {
		return d.compute(ctx, m)
	}
	d.mu.Lock()
	e := d.memo[key]
	if e == nil {
		e = &dated{}
		d.memo[key] = e
	}
	d.mu.Unlock()
	e.once.Do(func() { e.t, e.err = d.compute(ctx, m) })
	return e.t, e.err
}

func (d *dater) compute(ctx context.Context, m *Manifest) (time.Time, error) {
	if !m.IsIndex() {
		if m.Config == "" {
			return time.Time{}, nil
		}
		return d.cl.Created(ctx, d.repo, m.Config)
	}
	var newest time.Time
	for _, child := range m.Children {
		cm, err := d.cl.GetManifest(ctx, d.repo, child)
		if err != nil {
			return time.Time{}, fmt.Errorf("index child %s: %w", child, err)
		}
		if cm.IsIndex() {
			continue // nested indexes are not followed
		}
		t, err := d.date(ctx, cm)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(newest) {
			newest = t
		}
	}
	return newest, nil
}
