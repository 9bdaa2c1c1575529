package gc

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// InspectOptions tune Inspect.
type InspectOptions struct {
	// Workers bounds concurrent storage requests, as in Options.
	Workers int
	// Log and Progress are as in Options.
	Log      *slog.Logger
	Progress func(phase Phase, done, total int)
}

// Inventory is the registry as Run's scan and mark see it, for
// accounting: what is there, what each repository references, and what
// Run would delete with and without RemoveUntagged. Inspect only reads.
type Inventory struct {
	Repositories []*RepositoryInventory
	// Blobs is every blob in blobs/ with its size.
	Blobs map[digest.Digest]int64
	// Sweep is what Run would delete; SweepUntagged what it would delete
	// with RemoveUntagged (-m).
	Sweep, SweepUntagged Reclaim
	Problems             []Problem
	// Symlinks counts the ProblemSymlink problems.
	Symlinks int
	Duration time.Duration
}

// Reclaim is what one kind of Run would delete.
type Reclaim struct {
	Manifests  int   `json:"manifests"`
	LayerLinks int   `json:"layer_links"`
	Blobs      int   `json:"blobs"`
	Bytes      int64 `json:"bytes"`
}

// RepositoryInventory is one repository.
type RepositoryInventory struct {
	Name string
	// Tags maps each tag whose current link is readable to its manifest.
	Tags map[string]digest.Digest
	// Manifests are the repository's manifest revisions, sorted.
	Manifests []digest.Digest
	// Untagged are the revisions Run with RemoveUntagged would delete:
	// those no tag reaches (directly or through an index) that are not
	// referrers of a kept manifest.
	Untagged []digest.Digest

	c *collector
	r *repo
}

// Reach calls fn once for each digest reachable from roots in this
// repository: each root and, for each digest that is a manifest here,
// everything it references (config, layers, index children), as
// marking follows them. Digests that are no blob are included too.
func (ri *RepositoryInventory) Reach(roots []digest.Digest, fn func(digest.Digest)) {
	ri.c.reach(ri.r, roots, fn)
}

// Inspect scans drv as Run does and marks it both ways, deleting
// nothing.
func Inspect(ctx context.Context, drv storage.Driver, opts InspectOptions) (*Inventory, error) {
	start := time.Now()
	c := newCollector(drv, Options{RemoveUntagged: true, DryRun: true, Workers: opts.Workers, Log: opts.Log, Progress: opts.Progress})
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	inv := &Inventory{Blobs: make(map[digest.Digest]int64, len(c.blobs))}
	for d, b := range c.blobs {
		inv.Blobs[d] = b.size
	}
	untagged := c.mark(nil)
	inv.SweepUntagged = reclaim(c.plan(untagged))
	// Without -m every revision is a root; prepare's results serve both.
	c.opts.RemoveUntagged = false
	inv.Sweep = reclaim(c.plan(c.mark(nil)))
	c.opts.RemoveUntagged = true

	for i, r := range c.repos {
		if r.orphan {
			continue // no manifests: nothing to account
		}
		ri := &RepositoryInventory{Name: r.name, Tags: map[string]digest.Digest{}, c: c, r: r}
		for _, t := range r.tagList {
			if p, ok := r.current[t]; ok {
				if lr := c.links[p]; !lr.missing && lr.err == nil {
					ri.Tags[t] = lr.d
				}
			}
		}
		for _, rev := range r.revs {
			ri.Manifests = append(ri.Manifests, rev.d)
			if untagged.deleted[repoDigest{i, rev.d}] {
				ri.Untagged = append(ri.Untagged, rev.d)
			}
		}
		slices.Sort(ri.Manifests)
		slices.Sort(ri.Untagged)
		inv.Repositories = append(inv.Repositories, ri)
	}
	slices.SortFunc(inv.Repositories, func(a, b *RepositoryInventory) int { return strings.Compare(a.Name, b.Name) })
	inv.Problems = c.sortedProblems()
	inv.Symlinks = countKind(inv.Problems, ProblemSymlink)
	inv.Duration = time.Since(start)
	return inv, nil
}

func reclaim(p *sweepPlan) Reclaim {
	r := Reclaim{Manifests: len(p.revisions), LayerLinks: len(p.layerLinks), Blobs: len(p.blobs)}
	for _, b := range p.blobs {
		r.Bytes += b.Size
	}
	return r
}
