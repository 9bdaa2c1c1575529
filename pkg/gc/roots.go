package gc

import (
	"slices"

	"github.com/opencontainers/go-digest"
)

// rootSet is Roots resolved against the Snapshot: what they keep does
// not depend on the marking, so it is worked out once per Mark.
type rootSet struct {
	marks []digest.Digest                // existing blobs to keep
	links map[int]map[digest.Digest]bool // repository index -> layer links to keep
}

// resolveRoots works out what roots keep; nil when they keep nothing.
func (c *collector) resolveRoots(roots Roots) *rootSet {
	if roots.empty() {
		return nil
	}
	byName := make(map[string]int, len(c.repos))
	for i, r := range c.repos {
		byName[r.name] = i
	}
	rs := &rootSet{links: map[int]map[digest.Digest]bool{}}
	marked := map[digest.Digest]bool{}
	mark := func(d digest.Digest) {
		if !marked[d] && c.blobs[d] != nil {
			marked[d] = true
			rs.marks = append(rs.marks, d)
		}
	}
	keepLink := func(ri int, d digest.Digest) {
		if rs.links[ri] == nil {
			rs.links[ri] = map[digest.Digest]bool{}
		}
		rs.links[ri][d] = true
	}
	// A blob's closure follows the manifests read from any repository:
	// a blob root names no repository.
	blobs := slices.Clone(roots.Blobs)
	for _, l := range roots.LayerLinks {
		blobs = append(blobs, l.Digest) // kept even where the Snapshot has no such link
		if ri, ok := byName[l.Repository]; ok {
			keepLink(ri, l.Digest)
		}
	}
	closure(blobs, func(d digest.Digest) *manifestInfo { return c.manifests[d] }, mark)
	// A revision's closure is what it needs in its repository, as
	// keepForSafety sees it.
	for _, rv := range roots.Revisions {
		ri, ok := byName[rv.Repository]
		if !ok {
			continue
		}
		r := c.repos[ri]
		if _, ok := r.revIndex[rv.Digest]; !ok {
			continue
		}
		c.reach(r, []digest.Digest{rv.Digest}, func(d digest.Digest) {
			mark(d)
			keepLink(ri, d)
		})
	}
	return rs
}

// keepRoots applies rs to a replay's result: its blobs are marked, its
// layer links kept, and queued revisions whose digest is now marked stay
// (Distribution's rule: a queued manifest is deleted only if unmarked).
// It runs after the replay, so what the replay decided for everything
// else is as without roots.
func (c *collector) keepRoots(res *markResult, rs *rootSet) {
	for _, d := range rs.marks {
		res.marked[d] = true
	}
	dropKeptLinks(res, rs)
	res.deleteOrder = slices.DeleteFunc(res.deleteOrder, func(q repoDigest) bool {
		if !res.marked[q.d] {
			return false
		}
		delete(res.deleted, q)
		return true
	})
}

// dropKeptLinks takes the layer links rs keeps off res's deletions.
func dropKeptLinks(res *markResult, rs *rootSet) {
	for ri, keep := range rs.links {
		res.layerDel[ri] = slices.DeleteFunc(res.layerDel[ri], func(d digest.Digest) bool { return keep[d] })
	}
}
