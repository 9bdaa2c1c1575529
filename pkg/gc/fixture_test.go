package gc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

const (
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig   = "application/vnd.docker.container.image.v1+json"
	dockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// fixture writes registries straight into a driver, file by file, in
// Distribution's layout, as `docker push` through Distribution (or
// regctl) would leave them. It remembers what it wrote as a model the
// tests check GC against, independently of pkg/gc.
type fixture struct {
	t   testing.TB
	ctx context.Context
	drv storage.Driver
	rnd *rand.Rand
	n   int // makes configs unique

	// regctlLinks: write regctl's _regctl/referrers links for referrers.
	regctlLinks bool
	// docker: push Docker schema 2 types instead of OCI ones.
	docker bool

	docs map[digest.Digest]*doc
}

// doc is the model of one manifest.
type doc struct {
	index    bool
	blobs    []digest.Digest // config and layers
	children []digest.Digest
	subject  digest.Digest
}

func newFixture(t testing.TB, drv storage.Driver, seed uint64) *fixture {
	return &fixture{t: t, ctx: context.Background(), drv: drv, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		docs: map[digest.Digest]*doc{}}
}

func (f *fixture) put(p string, b []byte) {
	f.t.Helper()
	if err := f.drv.PutContent(f.ctx, p, b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) del(p string) {
	f.t.Helper()
	if err := f.drv.Delete(f.ctx, p); err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.t.Fatal(err)
	}
}

// blob stores content in blobs/ and returns its digest.
func (f *fixture) blob(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	f.put(storage.BlobDataPath(d), b)
	return d
}

func (f *fixture) link(p string, d digest.Digest) { f.put(p, []byte(d.String())) }

// layer uploads a blob into repo: the blob and its layer link.
func (f *fixture) layer(repo string, b []byte) ocispec.Descriptor {
	d := f.blob(b)
	f.link(storage.LayerLinkPath(repo, d), d)
	mt := ocispec.MediaTypeImageLayerGzip
	if f.docker {
		mt = dockerLayer
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

// randomBytes is a small random layer.
func (f *fixture) randomBytes() []byte {
	b := make([]byte, 16+f.rnd.IntN(48))
	for i := range b {
		b[i] = byte(f.rnd.Uint32())
	}
	return b
}

// manifest stores a manifest in repo as Distribution's PUT does (blob,
// revision link, and when tagged the tag's current link and index entry).
func (f *fixture) manifest(repo, tag string, b []byte, m *doc) digest.Digest {
	d := f.blob(b)
	f.link(storage.ManifestRevisionLinkPath(repo, d), d)
	if m.subject != "" && f.regctlLinks {
		f.link(storage.ReferrerLinkPath(repo, m.subject, d), d)
	}
	if tag != "" {
		f.tag(repo, tag, d)
	}
	f.docs[d] = m
	return d
}

func (f *fixture) tag(repo, tag string, d digest.Digest) {
	f.link(storage.TagIndexEntryLinkPath(repo, tag, d), d)
	f.link(storage.TagCurrentLinkPath(repo, tag), d)
}

// untag deletes a tag, as Distribution's tag DELETE does.
func (f *fixture) untag(repo, tag string) { f.del(storage.TagDir(repo, tag)) }

// deleteManifest is Distribution's manifest DELETE: the revision link
// goes, and the tags pointing at it.
func (f *fixture) deleteManifest(repo string, d digest.Digest) {
	f.del(storage.ManifestRevisionLinkPath(repo, d))
	for _, tag := range f.tags(repo) {
		if cur, ok := f.current(repo, tag); ok && cur == d {
			f.untag(repo, tag)
		}
	}
}

func (f *fixture) tags(repo string) []string {
	names, err := f.drv.List(f.ctx, storage.TagsDir(repo))
	if err != nil {
		return nil
	}
	for i := range names {
		names[i] = path.Base(names[i])
	}
	return names
}

func (f *fixture) current(repo, tag string) (digest.Digest, bool) {
	b, err := f.drv.GetContent(f.ctx, storage.TagCurrentLinkPath(repo, tag))
	if err != nil {
		return "", false
	}
	d, err := digest.Parse(string(b))
	return d, err == nil
}

// image pushes config and layers and an image manifest.
func (f *fixture) image(repo, tag string, layers ...[]byte) digest.Digest {
	f.n++
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","n":%d,"r":%d}`, f.n, f.rnd.Uint64())
	cmt := ocispec.MediaTypeImageConfig
	mt := ocispec.MediaTypeImageManifest
	if f.docker {
		cmt, mt = dockerConfig, dockerManifest
	}
	config := f.layer(repo, cfg)
	config.MediaType = cmt
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt, Config: config}
	model := &doc{blobs: []digest.Digest{config.Digest}}
	for _, l := range layers {
		desc := f.layer(repo, l)
		m.Layers = append(m.Layers, desc)
		model.blobs = append(model.blobs, desc.Digest)
	}
	return f.manifest(repo, tag, mustJSON(f.t, m), model)
}

// index pushes an image index (a Docker manifest list with docker set)
// over manifests already in repo.
func (f *fixture) index(repo, tag string, children ...digest.Digest) digest.Digest {
	mt := ocispec.MediaTypeImageIndex
	if f.docker {
		mt = dockerList
	}
	m := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt}
	archs := []string{"amd64", "arm64", "s390x", "ppc64le"}
	for i, c := range children {
		b := f.content(c)
		cmt := ocispec.MediaTypeImageManifest
		if f.docker {
			cmt = dockerManifest
		}
		m.Manifests = append(m.Manifests, ocispec.Descriptor{MediaType: cmt, Digest: c, Size: int64(len(b)),
			Platform: &ocispec.Platform{Architecture: archs[i%len(archs)], OS: "linux"}})
	}
	return f.manifest(repo, tag, mustJSON(f.t, m), &doc{index: true, children: slices.Clone(children)})
}

// referrer pushes an OCI artefact (a signature) whose subject is
// subject, by digest, as cosign or oras do.
func (f *fixture) referrer(repo string, subject digest.Digest) digest.Digest {
	empty := f.layer(repo, []byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	sig := f.layer(repo, f.randomBytes())
	sig.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	b, _ := f.drv.GetContent(f.ctx, storage.BlobDataPath(subject)) // may be pushed later, or never
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
		Config:       empty,
		Layers:       []ocispec.Descriptor{sig},
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: int64(len(b))},
	}
	return f.manifest(repo, "", mustJSON(f.t, m), &doc{blobs: []digest.Digest{empty.Digest, sig.Digest}, subject: subject})
}

// mount copies manifest d (and, for an index, its children) from one
// repository to another, as a cross-repository push does.
func (f *fixture) mount(from, to, tag string, d digest.Digest) {
	m := f.docs[d]
	for _, c := range m.children {
		f.mount(from, to, "", c)
	}
	for _, b := range m.blobs {
		f.link(storage.LayerLinkPath(to, b), b)
	}
	f.link(storage.ManifestRevisionLinkPath(to, d), d)
	if tag != "" {
		f.tag(to, tag, d)
	}
}

func (f *fixture) content(d digest.Digest) []byte {
	f.t.Helper()
	b, err := f.drv.GetContent(f.ctx, storage.BlobDataPath(d))
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genOptions shape a random registry.
type genOptions struct {
	Repos, Ops int
	Referrers  bool // push referrers (and referrers of referrers)
	Deletes    bool // delete tags and manifests through the "API"
	// Dangling lets manifest deletes hit index children (leaving the
	// index pointing at a manifest the repository no longer has).
	Dangling bool
	Docker   bool // some images and indexes in Docker's types
	Names    []string
}

var defaultNames = []string{"a", "a-b", "a/b", "a/b/c", "a.b", "g/app", "g/app-x", "g/lib", "z0", "z0/x"}

// generate fills the driver with a random registry.
func (f *fixture) generate(o genOptions) {
	names := o.Names
	if names == nil {
		names = defaultNames
	}
	if o.Repos < len(names) {
		names = names[:o.Repos]
	}
	pool := make([][]byte, 10)
	for i := range pool {
		pool[i] = f.randomBytes()
	}
	layers := func() [][]byte {
		var ls [][]byte
		for range 1 + f.rnd.IntN(3) {
			if f.rnd.IntN(3) == 0 {
				ls = append(ls, f.randomBytes())
			} else {
				ls = append(ls, pool[f.rnd.IntN(len(pool))])
			}
		}
		return ls
	}
	type pushed struct {
		repo string
		d    digest.Digest
	}
	var all []pushed
	tagNames := []string{"latest", "v1", "v2", "stable"}
	revs := func(repo string) []digest.Digest {
		var ds []digest.Digest
		for _, p := range all {
			if p.repo == repo {
				ds = append(ds, p.d)
			}
		}
		return ds
	}
	for range o.Ops {
		repo := names[f.rnd.IntN(len(names))]
		tag := tagNames[f.rnd.IntN(len(tagNames))]
		f.docker = o.Docker && f.rnd.IntN(3) == 0
		switch op := f.rnd.IntN(20); {
		case op < 7: // push (or overwrite) a tag
			all = append(all, pushed{repo, f.image(repo, tag, layers()...)})
		case op < 8: // push by digest only
			all = append(all, pushed{repo, f.image(repo, "", layers()...)})
		case op < 10: // multi-arch index, children untagged
			var children []digest.Digest
			for range 2 + f.rnd.IntN(2) {
				c := f.image(repo, "", layers()...)
				children = append(children, c)
				all = append(all, pushed{repo, c})
			}
			all = append(all, pushed{repo, f.index(repo, tag, children...)})
		case op < 12: // a referrer, maybe of a referrer
			f.docker = false
			if !o.Referrers || len(revs(repo)) == 0 {
				continue
			}
			rs := revs(repo)
			all = append(all, pushed{repo, f.referrer(repo, rs[f.rnd.IntN(len(rs))])})
		case op < 14: // mount something from another repository
			if len(all) == 0 {
				continue
			}
			src := all[f.rnd.IntN(len(all))]
			if src.repo == repo || f.docs[src.d].subject != "" {
				continue
			}
			if _, err := f.drv.Stat(f.ctx, storage.ManifestRevisionLinkPath(src.repo, src.d)); err != nil {
				continue
			}
			f.mount(src.repo, repo, tag, src.d)
			all = append(all, pushed{repo, src.d})
			for _, c := range f.docs[src.d].children {
				all = append(all, pushed{repo, c})
			}
		case op < 16: // delete a tag
			if o.Deletes {
				f.untag(repo, tag)
			}
		case op < 17: // delete a manifest by digest
			if !o.Deletes || len(revs(repo)) == 0 {
				continue
			}
			rs := revs(repo)
			d := rs[f.rnd.IntN(len(rs))]
			if !o.Dangling && f.isChild(repo, d, revs(repo)) {
				continue
			}
			f.deleteManifest(repo, d)
		case op < 18: // an upload never referenced (a failed push), maybe
			// of a layer other repositories use
			if f.rnd.IntN(2) == 0 {
				f.layer(repo, pool[f.rnd.IntN(len(pool))])
			} else {
				f.layer(repo, f.randomBytes())
			}
		case op < 19: // a blob in no repository at all
			f.blob(f.randomBytes())
		default: // re-tag an existing revision
			if rs := revs(repo); len(rs) > 0 {
				d := rs[f.rnd.IntN(len(rs))]
				if _, err := f.drv.Stat(f.ctx, storage.ManifestRevisionLinkPath(repo, d)); err == nil {
					f.tag(repo, tag, d)
				}
			}
		}
	}
	f.docker = false
	// Every repository keeps at least one tag, so none loses its tags
	// folder (where Run deliberately differs from Distribution).
	for _, repo := range names {
		if _, err := f.drv.Stat(f.ctx, storage.TagsDir(repo)); err != nil {
			f.image(repo, "keep", layers()...)
		}
	}
}

// isChild reports whether d is a child of an index among ds.
func (f *fixture) isChild(repo string, d digest.Digest, ds []digest.Digest) bool {
	for _, p := range ds {
		if slices.Contains(f.docs[p].children, d) {
			return true
		}
	}
	return false
}

// repoNames lists the repositories in the driver (folders with
// _manifests), from the tree.
func repoNames(tree map[string]string) []string {
	seen := map[string]bool{}
	for p := range tree {
		rel, ok := strings.CutPrefix(p, storage.RepositoriesRoot()+"/")
		if !ok {
			continue
		}
		if i := strings.Index(rel, "/_manifests/"); i > 0 {
			seen[rel[:i]] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
