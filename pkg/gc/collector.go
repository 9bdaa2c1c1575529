package gc

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// collector is one run.
type collector struct {
	drv     storage.Driver
	opts    Options
	log     *slog.Logger
	workers int
	batch   storage.BatchDeleter
	lister  storage.FileLister
	units   storage.UnitDeleter
	// keyOrder: the driver walks one flat keyspace in key order.
	keyOrder bool
	prog     progress

	mu          sync.Mutex // guards the scan's results and problems
	repos       []*repo
	blobs       map[digest.Digest]*blobEntry
	blobFiles   map[string][]string // blob folder -> files below it
	problems    []Problem
	problemSeen map[Problem]bool
	// tagLinks: repositories with a symbolic link met below their tags.
	tagLinks map[string]bool

	// layout: scan the filesystem by its layout rather than walking it
	// (see layout.go).
	layout    bool
	links     map[string]linkRead
	linkMD5   map[string]string               // link path -> MD5 from a FileLister
	manifests map[digest.Digest]*manifestInfo // by blob digest
	// prefetched: manifests read during the scan, by the digest their
	// revision link's path names (see prefetch).
	prefetched map[digest.Digest]*prefetchRead
	// cache: the manifest cache of an earlier run (see manifestcache.go),
	// set before cacheReady closes; cacheRaw is its bytes.
	cache      map[digest.Digest]cachedManifest
	cacheRaw   []byte
	cacheReady chan struct{}
	// deletedBlobs: blobs the sweep deleted, kept out of the manifest
	// cache; recorded only where there is one (lister set).
	deletedBlobs map[digest.Digest]bool

	rep *Report
}

func newCollector(drv storage.Driver, opts Options) *collector {
	c := &collector{
		drv:          drv,
		opts:         opts,
		log:          opts.Log,
		workers:      opts.Workers,
		blobs:        map[digest.Digest]*blobEntry{},
		blobFiles:    map[string][]string{},
		problemSeen:  map[Problem]bool{},
		tagLinks:     map[string]bool{},
		links:        map[string]linkRead{},
		linkMD5:      map[string]string{},
		prefetched:   map[digest.Digest]*prefetchRead{},
		deletedBlobs: map[digest.Digest]bool{},
		rep:          &Report{DryRun: opts.DryRun},
	}
	_, c.layout = storage.As[storage.LocalFolders](drv)
	_, c.keyOrder = storage.As[storage.FlatKeyspace](drv)
	c.prog.fn = opts.Progress
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.workers <= 0 {
		// S3 requests wait on the network: many in flight hide it. On
		// a disk, more than a few only queue.
		c.workers = 8
		if c.keyOrder {
			c.workers = 32
		}
	}
	// Batches name the files the scan saw; the layout scan does not see
	// every file of a folder, so it deletes folders one by one.
	if b, ok := storage.As[storage.BatchDeleter](drv); ok && !c.layout {
		c.batch = b
	}
	if l, ok := storage.As[storage.FileLister](drv); ok && !c.layout {
		c.lister = l
	}
	if u, ok := storage.As[storage.UnitDeleter](drv); ok && c.batch == nil {
		c.units = u
	}
	return c
}

func (c *collector) problem(p Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problemLocked(p)
}

func (c *collector) problemLocked(p Problem) {
	if c.problemSeen[p] {
		return
	}
	c.problemSeen[p] = true
	// Not logged: the report carries every problem, and the caller shows
	// it once (registry-garbage-collect and registry-usage print them).
	c.problems = append(c.problems, p)
}

// symlink reports p, where the driver refused a symbolic link, when
// err says so.
func (c *collector) symlink(p string, err error) bool {
	if !errors.Is(err, storage.ErrSymlink) {
		return false
	}
	detail := "a symbolic link, or below one: never followed; left alone"
	c.mu.Lock()
	defer c.mu.Unlock()
	// Behind a link below a repository's tags may be a tag: unread, it
	// would leave its manifests untagged, for -m to delete.
	if name, ok := tagsRepository(p); ok {
		c.tagLinks[name] = true
		detail += "; what the tags point at is unknown, so every manifest of " + name + " is kept"
	}
	c.problemLocked(Problem{Kind: ProblemSymlink, Path: p, Detail: detail})
	return true
}

// tagsRepository is the repository whose tags folder holds p, or is p.
func tagsRepository(p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, storage.RepositoriesRoot()+"/")
	if !ok {
		return "", false
	}
	name, rest, ok := strings.Cut(rel, "/_manifests/tags")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", false
	}
	return name, true
}

// countKind counts the problems of one kind.
func countKind(ps []Problem, kind string) int {
	n := 0
	for _, p := range ps {
		if p.Kind == kind {
			n++
		}
	}
	return n
}

// sortedProblems are the problems so far. Found by parallel scans, they
// are sorted, so runs compare.
func (c *collector) sortedProblems() []Problem {
	c.mu.Lock()
	out := slices.Clone(c.problems)
	c.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Detail, b.Detail))
	})
	return out
}

// load scans the registry, reads its links and manifests, and prepares
// each repository for marking: everything before the mark itself.
func (c *collector) load(ctx context.Context) error {
	if err := c.scan(ctx); err != nil {
		return phaseErr(PhaseScan, err)
	}
	sortRepos(c.repos, c.keyOrder)
	for _, r := range c.repos {
		if r.orphan {
			c.rep.OrphanRepositories++
		} else {
			c.rep.Repositories++
		}
	}
	if err := c.readLinks(ctx); err != nil {
		return phaseErr(PhaseRead, err)
	}
	if err := c.readManifests(ctx); err != nil {
		return phaseErr(PhaseRead, err)
	}
	c.log.Info("gc: read", "repositories", len(c.repos), "blobs", len(c.blobs), "links", len(c.links), "manifests", len(c.manifests), "manifests_from_cache", c.rep.ManifestsFromCache)

	c.prog.start(PhaseMark, len(c.repos))
	// Repositories are prepared independently; only marking follows
	// Distribution's order.
	err := forEach(ctx, runtime.GOMAXPROCS(0), len(c.repos), func(_ context.Context, i int) error {
		c.prepare(c.repos[i])
		return nil
	})
	if err != nil {
		return phaseErr(PhaseMark, err)
	}
	return nil
}
