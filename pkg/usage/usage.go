// Package usage accounts for a registry's storage per repository, per
// root namespace and as a whole, from pkg/gc's scan and mark (so it sees
// exactly what garbage collection sees). It only reads, so it is safe
// while a daemon serves.
package usage

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// Repository is one repository's usage.
type Repository struct {
	Name      string `json:"name"`
	Tags      int    `json:"tags"`
	Manifests int    `json:"manifests"`
	// Untagged counts the manifests GC -m would delete: no tag reaches
	// them, directly or through an index, and they refer to no kept
	// manifest.
	Untagged int `json:"untagged"`
	// TaggedBytes is the size of every blob the tagged images are made
	// of (manifests, configs, layers), each counted once.
	TaggedBytes int64 `json:"tagged_bytes"`
	// ExclusiveBytes is the size of the blobs only this repository
	// references (from any of its manifests, tagged or not): what
	// deleting the repository and collecting garbage would free.
	ExclusiveBytes int64 `json:"exclusive_bytes"`
}

// Namespace is one root namespace (the first path segment), counted as
// GitLab.com counts it: each blob of a tagged image once, however many of
// the namespace's repositories use it.
type Namespace struct {
	Name         string `json:"name"`
	Repositories int    `json:"repositories"`
	Tags         int    `json:"tags"`
	Bytes        int64  `json:"bytes"`
}

// Store is the whole storage.
type Store struct {
	Blobs      int   `json:"blobs"`
	TotalBytes int64 `json:"total_bytes"`
	// GC is what registry-garbage-collect would delete, GCUntagged what
	// registry-garbage-collect -m would.
	GC         gc.Reclaim `json:"gc"`
	GCUntagged gc.Reclaim `json:"gc_untagged"`
	// Symlinks counts the symbolic links met in a filesystem root:
	// never followed, so nothing behind them is counted (each is in
	// Report.Problems).
	Symlinks int `json:"symlinks,omitempty"`
}

// Report is registry-usage's result. Lists are sorted largest first.
type Report struct {
	Repositories []Repository  `json:"repositories"`
	Namespaces   []Namespace   `json:"namespaces"`
	Store        Store         `json:"store"`
	Problems     []gc.Problem  `json:"problems,omitempty"`
	Duration     time.Duration `json:"duration_ns"`
}

// Options tune Run.
type Options = gc.InspectOptions

// Run inspects drv and accounts for it.
func Run(ctx context.Context, drv storage.Driver, opts Options) (*Report, error) {
	inv, err := gc.Inspect(ctx, drv, opts)
	if err != nil {
		return nil, err
	}
	rep := Compute(inv)
	rep.Duration = inv.Duration
	return rep, nil
}

// Compute accounts for an inventory.
func Compute(inv *gc.Inventory) *Report {
	rep := &Report{Problems: inv.Problems}
	rep.Store.GC, rep.Store.GCUntagged = inv.Sweep, inv.SweepUntagged
	rep.Store.Blobs = len(inv.Blobs)
	rep.Store.Symlinks = inv.Symlinks
	for _, size := range inv.Blobs {
		rep.Store.TotalBytes += size
	}

	// Which blobs each repository references, and by how many
	// repositories each blob is referenced.
	refs := make([][]digest.Digest, len(inv.Repositories))
	users := map[digest.Digest]int{}
	namespaces := map[string]*nsAcc{}
	for i, ri := range inv.Repositories {
		ri.Reach(ri.Manifests, func(d digest.Digest) {
			if _, ok := inv.Blobs[d]; ok {
				refs[i] = append(refs[i], d)
				users[d]++
			}
		})
		ns := rootNamespace(ri.Name)
		acc := namespaces[ns]
		if acc == nil {
			acc = &nsAcc{Namespace: Namespace{Name: ns}, seen: map[digest.Digest]bool{}}
			namespaces[ns] = acc
		}
		acc.Repositories++
		acc.Tags += len(ri.Tags)

		r := Repository{Name: ri.Name, Tags: len(ri.Tags), Manifests: len(ri.Manifests), Untagged: len(ri.Untagged)}
		ri.Reach(taggedRoots(ri), func(d digest.Digest) {
			size, ok := inv.Blobs[d]
			if !ok {
				return
			}
			r.TaggedBytes += size
			if !acc.seen[d] {
				acc.seen[d] = true
				acc.Bytes += size
			}
		})
		rep.Repositories = append(rep.Repositories, r)
	}
	for i := range rep.Repositories {
		for _, d := range refs[i] {
			if users[d] == 1 {
				rep.Repositories[i].ExclusiveBytes += inv.Blobs[d]
			}
		}
	}
	for _, acc := range namespaces {
		rep.Namespaces = append(rep.Namespaces, acc.Namespace)
	}
	slices.SortFunc(rep.Repositories, func(a, b Repository) int {
		return cmp.Or(cmp.Compare(b.TaggedBytes, a.TaggedBytes), cmp.Compare(b.ExclusiveBytes, a.ExclusiveBytes), strings.Compare(a.Name, b.Name))
	})
	slices.SortFunc(rep.Namespaces, func(a, b Namespace) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Name, b.Name))
	})
	return rep
}

type nsAcc struct {
	Namespace
	seen map[digest.Digest]bool
}

// taggedRoots are the distinct manifests of the repository its tags
// point at (a tag whose manifest is gone holds nothing).
func taggedRoots(ri *gc.RepositoryInventory) []digest.Digest {
	var out []digest.Digest
	for _, d := range ri.Tags {
		if _, ok := slices.BinarySearch(ri.Manifests, d); ok {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func rootNamespace(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}

// Top returns the report with at most n repositories and n namespaces
// (the largest); n <= 0 keeps all.
func (r *Report) Top(n int) *Report {
	out := *r
	if n > 0 {
		out.Repositories = out.Repositories[:min(n, len(out.Repositories))]
		out.Namespaces = out.Namespaces[:min(n, len(out.Namespaces))]
	}
	return &out
}
