package gc

import (
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// prepare turns a repository's listing and link contents into what
// Distribution's enumerations would yield, recording problems once.
func (c *collector) prepare(r *repo) {
	r.revIndex = map[digest.Digest]int{}
	r.forced = map[digest.Digest]bool{}
	r.tagCount = map[digest.Digest]int{}
	r.resolve = map[digest.Digest]*manifestInfo{}
	slices.Sort(r.revLinks)
	slices.Sort(r.layerLinks)
	for t := range r.tags {
		r.tagList = append(r.tagList, t)
	}
	slices.Sort(r.tagList)

	if r.orphan && !validRepoName(r.name) {
		r.frozen = true // not Distribution's business, nor Run's
		return
	}
	if !validRepoName(r.name) {
		r.frozen = true
		c.problem(Problem{Kind: ProblemBadRepository, Path: storage.RepositoryDir(r.name), Repository: r.name,
			Detail: "not a valid repository name (Distribution would stop here); nothing in it is deleted and everything it references is kept"})
	}

	// What each manifest digest of the repository resolves to: the
	// blob its canonical revision link names (Distribution's Exists and
	// Get read that link, whatever other links say).
	for _, p := range r.revLinks {
		lr := c.links[p]
		if d, ok := revisionPathDigest(r, p); ok && !lr.missing && lr.err == nil && c.blobs[lr.d] != nil && c.manifests[lr.d] != nil {
			r.resolve[d] = c.manifests[lr.d]
		}
	}

	// Revisions: Distribution walks _manifests/revisions for files
	// named "link", reads each, and keeps the digest when the canonical
	// link of that digest resolves to an existing blob.
	for _, p := range r.revLinks {
		lr := c.links[p]
		if lr.missing {
			continue
		}
		if lr.err != nil {
			detail := fmt.Sprintf("%v (Distribution would stop here)", lr.err)
			if d, ok := revisionPathDigest(r, p); ok && c.blobs[d] != nil && c.manifests[d] != nil {
				// The path still says which manifest this was:
				// keep it as if tagged, with all it references.
				detail += "; kept, as if tagged, as the manifest its path names"
				r.forced[d] = true
				r.resolve[d] = c.manifests[d]
				c.addRevision(r, revision{d: d, forced: true})
			} else {
				detail += "; ignored"
			}
			c.problem(Problem{Kind: ProblemCorruptLink, Path: p, Repository: r.name, Detail: detail})
			continue
		}
		canon := p
		if d, ok := revisionPathDigest(r, p); !ok || d != lr.d {
			if ok {
				c.problem(Problem{Kind: ProblemMismatchedLink, Path: p, Repository: r.name, Digest: lr.d,
					Detail: "links to " + lr.d.String() + "; followed, as Distribution does"})
			}
			canon = storage.ManifestRevisionLinkPath(r.name, lr.d)
		}
		clr, listed := c.links[canon]
		if !listed || clr.missing || clr.err != nil {
			continue // not a revision to Distribution (a corrupt one is reported on its own)
		}
		if c.blobs[clr.d] == nil {
			c.problem(Problem{Kind: ProblemMissingBlob, Path: canon, Repository: r.name, Digest: clr.d,
				Detail: "manifest blob missing; the revision is left as it is, as Distribution does"})
			continue
		}
		c.addRevision(r, revision{d: lr.d})
	}

	// Tags, read only with -m: which revisions a tag points at now.
	if c.opts.RemoveUntagged {
		for _, t := range r.tagList {
			p, ok := r.current[t]
			if !ok {
				continue
			}
			lr := c.links[p]
			if lr.missing {
				continue
			}
			if lr.err != nil {
				r.allTagged = true
				c.problem(Problem{Kind: ProblemCorruptLink, Path: p, Repository: r.name,
					Detail: fmt.Sprintf("%v (Distribution would stop here); what tag %q points at is unknown, so every manifest of the repository is kept", lr.err, t)})
				continue
			}
			r.tagCount[lr.d]++
		}
		if c.tagLinks[r.name] {
			r.allTagged = true // reported with the link
		}
		if !r.tagsDir && !r.allTagged && len(r.revs) > 0 {
			c.problem(Problem{Kind: ProblemDeviation, Path: storage.TagsDir(r.name), Repository: r.name,
				Detail: "no tags folder: Distribution would keep these untagged manifests yet collect their blobs; they are deleted as untagged instead"})
		}
	}

	// Layer links: the same walk and check over _layers.
	seen := map[digest.Digest]bool{}
	for _, p := range r.layerLinks {
		lr := c.links[p]
		if lr.missing {
			continue
		}
		if lr.err != nil {
			c.problem(Problem{Kind: ProblemCorruptLink, Path: p, Repository: r.name,
				Detail: fmt.Sprintf("%v (Distribution would stop here); left alone", lr.err)})
			continue
		}
		canon := p
		if d, ok := layerPathDigest(r, p); !ok || d != lr.d {
			if ok {
				c.problem(Problem{Kind: ProblemMismatchedLink, Path: p, Repository: r.name, Digest: lr.d,
					Detail: "links to " + lr.d.String() + "; followed, as Distribution does"})
			}
			canon = storage.LayerLinkPath(r.name, lr.d)
		}
		clr, listed := c.links[canon]
		if !listed || clr.missing || clr.err != nil {
			continue
		}
		if c.blobs[clr.d] == nil && !r.orphan {
			c.problem(Problem{Kind: ProblemMissingBlob, Path: canon, Repository: r.name, Digest: clr.d,
				Detail: "blob missing; the link is left as it is, as Distribution does"})
			continue
		}
		if !seen[lr.d] {
			seen[lr.d] = true
			r.layers = append(r.layers, lr.d)
		}
	}
}

func (c *collector) addRevision(r *repo, rev revision) {
	if i, ok := r.revIndex[rev.d]; ok {
		r.revs[i].forced = r.revs[i].forced || rev.forced
		return
	}
	r.revIndex[rev.d] = len(r.revs)
	r.revs = append(r.revs, rev)
}

// info is the manifest Distribution's manifest store reads for d in r
// (from the blob d's canonical revision link names), nil when d does not
// exist there (its Exists is false).
func (c *collector) info(r *repo, d digest.Digest) *manifestInfo { return r.resolve[d] }

type repoDigest struct {
	repo int
	d    digest.Digest
}

// markResult is the outcome of marking.
type markResult struct {
	marked        map[digest.Digest]bool // Distribution's mark set, plus what safety keeps
	walked        map[digest.Digest]bool // manifests whose references were marked
	deleted       map[repoDigest]bool    // revisions to delete
	deleteOrder   []repoDigest
	layerDel      [][]digest.Digest // per repository, in its order
	referrersKept int
	linksKept     int // layer links Distribution deletes that kept untagged revisions need
}

// mark replays Distribution's marking, keeps referrers, and makes sure
// nothing a kept manifest needs is swept; then keeps roots (nil: none)
// with what they need.
func (c *collector) mark(roots *rootSet) *markResult {
	// Referrers of kept manifests are treated as tagged; that keeps
	// more, which may keep more referrers (a signature of an
	// attestation): repeat until nothing changes. Each round is cheap
	// (memory only), and chains are short.
	extra := map[repoDigest]bool{}
	var res *markResult
	for {
		res = c.simulate(extra)
		if roots != nil {
			c.keepRoots(res, roots)
		}
		if !c.opts.RemoveUntagged {
			break
		}
		changed := false
		for ri, r := range c.repos {
			for _, rev := range r.revs {
				info := c.info(r, rev.d)
				if info == nil || info.subject == "" {
					continue
				}
				if _, isRev := r.revIndex[info.subject]; !isRev {
					continue // a dangling subject keeps nothing
				}
				self, subj := repoDigest{ri, rev.d}, repoDigest{ri, info.subject}
				if !res.deleted[subj] && res.deleted[self] {
					extra[self] = true
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	res.referrersKept = len(extra)
	c.keepForSafety(res, extra)
	c.orphanLinks(res)
	if roots != nil {
		dropKeptLinks(res, roots) // orphanLinks may have added some
	}
	return res
}

// orphanLinks decides the layer links of orphan repositories (layer
// links, no _manifests: every manifest deleted through the API), which
// Distribution does not list, so it leaves their links forever, to blobs
// it may collect. A link goes when its blob goes now or is missing
// already: it serves nothing then (the daemon answers 404 for such a
// blob anyway). A link whose blob stays is left alone: it may be a push
// in flight into a new repository (layers first, manifest last), which
// deleting it would break, as Distribution's link sweep would.
func (c *collector) orphanLinks(res *markResult) {
	for ri, r := range c.repos {
		if !r.orphan || r.frozen {
			continue
		}
		for _, d := range r.layers {
			if c.blobs[d] == nil || !res.marked[d] {
				res.layerDel[ri] = append(res.layerDel[ri], d)
			}
		}
	}
}

// isRoot tells the revisions Distribution marks when it meets them: all
// without -m, else the tagged ones (and those regctl keeps as if tagged).
func (c *collector) isRoot(ri int, r *repo, rev revision, extra map[repoDigest]bool) bool {
	return !c.opts.RemoveUntagged || r.frozen || r.allTagged || rev.forced ||
		r.tagCount[rev.d] > 0 || extra[repoDigest{ri, rev.d}]
}

// simulate is Distribution's MarkAndSweep marking, in memory: the same
// decisions, in the same order, on what the scan read.
func (c *collector) simulate(extra map[repoDigest]bool) *markResult {
	res := &markResult{
		marked:   map[digest.Digest]bool{},
		walked:   map[digest.Digest]bool{},
		deleted:  map[repoDigest]bool{},
		layerDel: make([][]digest.Digest, len(c.repos)),
	}
	var queued []repoDigest
	for ri, r := range c.repos {
		if r.orphan {
			continue // not listed by Distribution; see orphanLinks
		}
		for _, rev := range r.revs {
			if !c.isRoot(ri, r, rev, extra) {
				// Untagged: queued for deletion, references not marked.
				queued = append(queued, repoDigest{ri, rev.d})
				continue
			}
			res.marked[rev.d] = true
			c.markRefs(r, rev.d, res)
		}
		// Layer links are judged right after the repository's
		// manifests, against the marks made so far.
		if r.frozen {
			continue
		}
		for _, d := range r.layers {
			if !res.marked[d] {
				res.layerDel[ri] = append(res.layerDel[ri], d)
			}
		}
	}
	// Queued manifests marked afterwards (children of a tagged index,
	// in this repository or any other) stay.
	for _, q := range queued {
		if !res.marked[q.d] {
			res.deleted[q] = true
			res.deleteOrder = append(res.deleteOrder, q)
		}
	}
	return res
}

// markRefs marks what manifest d of r references, descending into those
// that are manifests of r, but not into what is already marked: exactly
// Distribution's markManifestReferences.
func (c *collector) markRefs(r *repo, d digest.Digest, res *markResult) {
	info := c.info(r, d)
	if info == nil {
		return
	}
	res.walked[d] = true
	if info.err != nil {
		c.badManifest(r, d, info)
	}
	for _, ref := range info.refs {
		if res.marked[ref] {
			continue
		}
		res.marked[ref] = true
		if r.resolve[ref] != nil {
			c.markRefs(r, ref, res)
		}
	}
}

func (c *collector) badManifest(r *repo, d digest.Digest, info *manifestInfo) {
	c.problem(Problem{Kind: ProblemBadManifest, Path: storage.ManifestRevisionDir(r.name, d), Repository: r.name, Digest: d,
		Detail: fmt.Sprintf("%v (Distribution would stop here); kept, with every digest written in it", info.err)})
}

// keepForSafety makes sure every manifest that stays keeps what it
// references. Distribution does not descend into a digest already marked,
// so when an earlier repository marked a manifest without its references
// (an index there names a manifest that is not in that repository), a
// kept manifest of a later one can lose its blobs, and a tagged image its
// layer links. Such blobs and links are kept and reported.
func (c *collector) keepForSafety(res *markResult, extra map[repoDigest]bool) {
	for ri, r := range c.repos {
		var roots, others []digest.Digest
		for _, rev := range r.revs {
			switch {
			case c.isRoot(ri, r, rev, extra):
				roots = append(roots, rev.d)
			case !res.deleted[repoDigest{ri, rev.d}]:
				others = append(others, rev.d)
			}
		}
		dropLinks := map[digest.Digest]bool{}
		for _, d := range res.layerDel[ri] {
			dropLinks[d] = true
		}
		visit := func(start []digest.Digest, tagged bool) {
			c.reach(r, start, func(d digest.Digest) {
				if !res.marked[d] && c.blobs[d] != nil {
					res.marked[d] = true
					c.problem(Problem{Kind: ProblemKeptForSafety, Path: storage.BlobDir(d), Repository: r.name, Digest: d,
						Detail: "referenced by a kept manifest, though Distribution's marking misses it; blob kept"})
				}
				if !dropLinks[d] {
					return
				}
				delete(dropLinks, d)
				if tagged {
					c.problem(Problem{Kind: ProblemKeptForSafety, Path: storage.LayerLinkPath(r.name, d), Repository: r.name, Digest: d,
						Detail: "used by a tagged image, though Distribution's marking misses it; layer link kept"})
					return
				}
				// An untagged revision kept because another
				// repository marks its digest (-m): Distribution
				// judged this repository's links before that mark,
				// and would leave the manifest here unpullable. Not a
				// problem of the storage: a deliberate difference.
				res.linksKept++
				c.log.Debug("gc: layer link kept for a manifest kept in its repository", "repository", r.name, "digest", d,
					"path", storage.LayerLinkPath(r.name, d))
			})
		}
		visit(roots, true)
		visit(others, false)
		if len(dropLinks) != len(res.layerDel[ri]) {
			res.layerDel[ri] = slices.DeleteFunc(res.layerDel[ri], func(d digest.Digest) bool { return !dropLinks[d] })
		}
	}
}

// reach calls fn once for each digest reachable from start in r: the
// digests themselves and, for each that is a manifest of r, everything
// it references, recursively. Unlike Distribution's marking it does not
// stop at what is marked already: it is what a kept manifest needs.
func (c *collector) reach(r *repo, start []digest.Digest, fn func(digest.Digest)) {
	closure(start, func(d digest.Digest) *manifestInfo { return c.info(r, d) }, fn)
}

// closure calls fn once for each digest reachable from start through
// the manifests info tells.
func closure(start []digest.Digest, info func(digest.Digest) *manifestInfo, fn func(digest.Digest)) {
	seen := map[digest.Digest]bool{}
	var walk func(d digest.Digest)
	walk = func(d digest.Digest) {
		if seen[d] {
			return
		}
		seen[d] = true
		fn(d)
		if info := info(d); info != nil {
			for _, ref := range info.refs {
				walk(ref)
			}
		}
	}
	for _, d := range start {
		walk(d)
	}
}
