package gc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// snapshot is every file below the driver's root, path -> content, but
// GC's own records (the manifest cache, which dry runs write too).
func snapshot(t testing.TB, drv storage.Driver) map[string]string {
	t.Helper()
	ctx := context.Background()
	tree := map[string]string{}
	err := drv.Walk(ctx, "/", func(fi storage.FileInfo) error {
		if fi.IsDir || strings.HasPrefix(fi.Path, storage.Root+"/_regctl/gc/") {
			return nil
		}
		b, err := drv.GetContent(ctx, fi.Path)
		if err != nil {
			return err
		}
		tree[fi.Path] = string(b)
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return tree
}

// diffTrees describes how got differs from want, "" when it does not.
func diffTrees(want, got map[string]string) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[p]; !ok {
			b.WriteString("  missing " + p + "\n")
		} else if g != want[p] {
			b.WriteString("  changed " + p + "\n")
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			b.WriteString("  extra   " + p + "\n")
		}
	}
	return b.String()
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// model reads a registry tree the simple way, assuming it is well formed
// (no dangling index children, no corrupt links), and says what a
// collection must keep: an independent statement of the semantics.
type model struct {
	tree    map[string]string
	repos   []string
	revs    map[string]map[digest.Digest]bool
	tagged  map[string]map[digest.Digest]bool
	blobs   map[digest.Digest]bool
	parsed  map[digest.Digest]parsedDoc
	links   map[string]map[digest.Digest]bool // layer links
	refLink map[string]map[digest.Digest]bool // repositories' _regctl referrer links, by referrer
}

type parsedDoc struct {
	refs    []digest.Digest // config+layers or children
	subject digest.Digest
}

func newModel(tree map[string]string) *model {
	m := &model{tree: tree, revs: map[string]map[digest.Digest]bool{}, tagged: map[string]map[digest.Digest]bool{},
		blobs: map[digest.Digest]bool{}, parsed: map[digest.Digest]parsedDoc{},
		links: map[string]map[digest.Digest]bool{}, refLink: map[string]map[digest.Digest]bool{}}
	m.repos = repoNames(tree)
	for p, content := range tree {
		if rel, ok := strings.CutPrefix(p, storage.BlobsRoot()+"/"); ok && strings.HasSuffix(rel, "/data") {
			parts := strings.Split(rel, "/")
			m.blobs[digest.Digest(parts[0]+":"+parts[2])] = true
			var doc struct {
				Config    *struct{ Digest digest.Digest }
				Layers    []struct{ Digest digest.Digest }
				Manifests []struct{ Digest digest.Digest }
				Subject   *struct{ Digest digest.Digest }
			}
			if json.Unmarshal([]byte(content), &doc) == nil && (doc.Config != nil || doc.Manifests != nil) {
				var pd parsedDoc
				if doc.Config != nil {
					pd.refs = append(pd.refs, doc.Config.Digest)
				}
				for _, l := range doc.Layers {
					pd.refs = append(pd.refs, l.Digest)
				}
				for _, c := range doc.Manifests {
					pd.refs = append(pd.refs, c.Digest)
				}
				if doc.Subject != nil {
					pd.subject = doc.Subject.Digest
				}
				m.parsed[digest.FromString(content)] = pd
			}
		}
	}
	for _, r := range m.repos {
		m.revs[r], m.tagged[r], m.links[r], m.refLink[r] = map[digest.Digest]bool{}, map[digest.Digest]bool{}, map[digest.Digest]bool{}, map[digest.Digest]bool{}
		for p, content := range tree {
			d := digest.Digest(content)
			switch {
			case strings.HasPrefix(p, storage.ManifestRevisionsDir(r)+"/"):
				if m.blobs[d] {
					m.revs[r][d] = true
				}
			case strings.HasPrefix(p, storage.TagsDir(r)+"/") && strings.HasSuffix(p, "/current/link"):
				m.tagged[r][d] = true
			case strings.HasPrefix(p, storage.LayersDir(r)+"/"):
				m.links[r][d] = true
			case strings.HasPrefix(p, storage.RegctlDir(r)+"/referrers/"):
				m.refLink[r][d] = true
			}
		}
	}
	return m
}

// closure adds d and all it references in repository r to set,
// descending into references that are manifests of r; visited holds the
// manifests of r already descended into.
func (m *model) closure(r string, d digest.Digest, set, visited map[digest.Digest]bool) {
	set[d] = true
	if visited[d] {
		return
	}
	visited[d] = true
	for _, ref := range m.parsed[d].refs {
		if m.revs[r][ref] {
			m.closure(r, ref, set, visited)
		} else {
			set[ref] = true
		}
	}
}

// expect returns the revisions each repository keeps and the digests
// that stay marked: tagged manifests (all, without -m), what they
// reference, untagged ones referenced or tagged anywhere, and, with -m,
// referrers of kept manifests, recursively.
func (m *model) expect(removeUntagged bool) (kept map[string]map[digest.Digest]bool, marked map[digest.Digest]bool) {
	kept, marked, _ = m.expectRoots(removeUntagged)
	return kept, marked
}

// expectRoots is expect, and also the roots: revisions marked when met
// (all without -m, else tagged ones and kept referrers).
func (m *model) expectRoots(removeUntagged bool) (kept map[string]map[digest.Digest]bool, marked map[digest.Digest]bool, roots map[string]map[digest.Digest]bool) {
	extra := map[string]map[digest.Digest]bool{}
	for _, r := range m.repos {
		extra[r] = map[digest.Digest]bool{}
	}
	for {
		marked = map[digest.Digest]bool{}
		kept = map[string]map[digest.Digest]bool{}
		for _, r := range m.repos {
			visited := map[digest.Digest]bool{}
			for d := range m.revs[r] {
				if !removeUntagged || m.tagged[r][d] || extra[r][d] {
					m.closure(r, d, marked, visited)
				}
			}
		}
		// A kept manifest keeps what it references (which may keep
		// more manifests): only needed when an index names a manifest
		// its repository lacks, so that a digest is marked somewhere
		// without its references.
		for grew := true; grew; {
			grew = false
			for _, r := range m.repos {
				if kept[r] == nil {
					kept[r] = map[digest.Digest]bool{}
				}
				visited := map[digest.Digest]bool{}
				for d := range m.revs[r] {
					if !kept[r][d] && (!removeUntagged || m.tagged[r][d] || extra[r][d] || marked[d]) {
						kept[r][d] = true
						grew = true
					}
					if kept[r][d] {
						m.closure(r, d, marked, visited)
					}
				}
			}
		}
		changed := false
		for _, r := range m.repos {
			for d := range m.revs[r] {
				if s := m.parsed[d].subject; s != "" && !kept[r][d] && kept[r][s] {
					extra[r][d] = true
					changed = true
				}
			}
		}
		if !changed {
			roots = map[string]map[digest.Digest]bool{}
			for _, r := range m.repos {
				roots[r] = map[digest.Digest]bool{}
				for d := range m.revs[r] {
					if !removeUntagged || m.tagged[r][d] || extra[r][d] {
						roots[r][d] = true
					}
				}
			}
			return kept, marked, roots
		}
	}
}

// checkAfter checks a collected tree against the model of the tree
// before it.
func checkAfter(t *testing.T, before *model, after map[string]string, removeUntagged bool) {
	t.Helper()
	kept, marked := before.expect(removeUntagged)
	a := newModel(after)
	var errs []string
	fail := func(format string, args ...any) {
		if len(errs) < 30 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	// Revisions: exactly the kept ones remain.
	for _, r := range before.repos {
		for d := range before.revs[r] {
			if kept[r][d] != a.revs[r][d] {
				fail("%s@%s: kept=%v but present=%v", r, d, kept[r][d], a.revs[r][d])
			}
		}
	}
	// Blobs: exactly the marked ones remain.
	for d := range before.blobs {
		if marked[d] != a.blobs[d] {
			fail("blob %s: marked=%v but present=%v", d, marked[d], a.blobs[d])
		}
	}
	// Orphan repositories (layer links, no _manifests) keep no link to
	// a blob that is gone.
	for p, c := range after {
		rel, _ := strings.CutPrefix(p, storage.RepositoriesRoot()+"/")
		if i := strings.Index(rel, "/_layers/"); i > 0 && !slices.Contains(a.repos, rel[:i]) && !a.blobs[digest.Digest(c)] {
			fail("orphan repository %s: layer link %s to a missing blob remains", rel[:i], p)
		}
	}
	for _, r := range before.repos {
		// Every kept manifest is complete in its repository: pullable
		// by digest, layer links included, whatever the order of
		// repositories (Distribution's marking order drops the links
		// of a manifest untagged here but tagged in a later
		// repository; Run keeps them).
		for d := range kept[r] {
			before.checkComplete(r, d, a, false, fail)
		}
		// Layer links left point at marked blobs.
		for d := range a.links[r] {
			if !marked[d] {
				fail("%s: layer link %s to an unmarked blob remains", r, d)
			}
		}
		// Tags are untouched.
		for p, c := range before.tree {
			if strings.HasPrefix(p, storage.TagsDir(r)+"/") && strings.HasSuffix(p, "/current/link") && after[p] != c {
				fail("tag link %s changed", p)
			}
			// Index entries go with their manifest only.
			if strings.HasPrefix(p, storage.TagsDir(r)+"/") && strings.Contains(p, "/index/") {
				d := digest.Digest(c)
				if _, present := after[p]; present != (kept[r][d] || !before.revs[r][d]) {
					fail("tag index entry %s: present=%v, manifest kept=%v", p, present, kept[r][d])
				}
			}
		}
		// Referrer links go with their referrer only.
		for d := range before.refLink[r] {
			if a.refLink[r][d] != kept[r][d] && before.revs[r][d] {
				fail("%s: referrer link of %s present=%v, kept=%v", r, d, a.refLink[r][d], kept[r][d])
			}
		}
	}
	// Uploads are untouched.
	for p, c := range before.tree {
		if strings.Contains(p, "/_uploads/") && after[p] != c {
			fail("upload file %s changed", p)
		}
	}
	if len(errs) > 0 {
		t.Errorf("after GC (-m=%v):\n  %s", removeUntagged, strings.Join(errs, "\n  "))
	}
}

// checkComplete fails unless manifest d of repository r can be pulled
// from tree a: revision link, blob, and for each reference the blob and
// layer link, or for a child the same recursively.
//
// With blobsOnly, layer links are not required.
func (m *model) checkComplete(r string, d digest.Digest, a *model, blobsOnly bool, fail func(string, ...any)) {
	if !a.revs[r][d] {
		fail("%s@%s: revision missing", r, d)
		return
	}
	pd := m.parsed[d]
	for _, ref := range pd.refs {
		if m.revs[r][ref] {
			m.checkComplete(r, ref, a, blobsOnly, fail)
			continue
		}
		if !a.blobs[ref] {
			fail("%s@%s: blob %s missing", r, d, ref)
		}
		_, dangling := m.parsed[ref] // an index child the repository lacks
		if !blobsOnly && !dangling && !a.links[r][ref] {
			fail("%s@%s: layer link %s missing", r, d, ref)
		}
	}
}

// checkTaggedComplete checks that every tagged image of the tree before,
// and its referrers, are still complete.
func checkTaggedComplete(t *testing.T, before *model, after map[string]string, removeUntagged bool) {
	t.Helper()
	_, _, roots := before.expectRoots(removeUntagged)
	a := newModel(after)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, r := range before.repos {
		for d := range before.revs[r] {
			if before.tagged[r][d] || (roots[r][d] && before.parsed[d].subject != "") {
				before.checkComplete(r, d, a, false, fail)
			}
		}
	}
	if len(errs) > 0 {
		t.Errorf("tagged images incomplete:\n  %s", strings.Join(errs[:min(len(errs), 30)], "\n  "))
	}
}
