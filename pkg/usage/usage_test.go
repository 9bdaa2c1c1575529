package usage_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
	"regctl/pkg/usage"
)

// store writes a registry straight into a filesystem driver, in
// Distribution's layout.
type store struct {
	t   *testing.T
	drv storage.Driver
}

func (s store) write(p string, b []byte) {
	if err := s.drv.PutContent(context.Background(), p, b); err != nil {
		s.t.Fatal(err)
	}
}

// blob writes b into blobs/ and, when repo is set, links it as one of
// repo's layers; it returns the descriptor.
func (s store) blob(repo, mediaType string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	s.write(storage.BlobDataPath(d), b)
	if repo != "" {
		s.write(storage.LayerLinkPath(repo, d), []byte(d))
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// manifest writes v as a manifest revision of repo, tagged when tag is set.
func (s store) manifest(repo, tag, mediaType string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	desc := s.blob("", mediaType, b)
	s.write(storage.ManifestRevisionLinkPath(repo, desc.Digest), []byte(desc.Digest))
	if tag != "" {
		s.write(storage.TagCurrentLinkPath(repo, tag), []byte(desc.Digest))
		s.write(storage.TagIndexEntryLinkPath(repo, tag, desc.Digest), []byte(desc.Digest))
	}
	return desc
}

// image writes a config and an image manifest over the given layers
// (already in blobs/; linked into repo here).
func (s store) image(repo, tag string, layers ...[]byte) (manifest, config ocispec.Descriptor) {
	config = s.blob(repo, ocispec.MediaTypeImageConfig, fmt.Appendf(nil, `{"repo":%q,"tag":%q,"n":%d}`, repo, tag, len(layers)))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config}
	m.SchemaVersion = 2
	for _, l := range layers {
		m.Layers = append(m.Layers, s.blob(repo, ocispec.MediaTypeImageLayerGzip, l))
	}
	return s.manifest(repo, tag, m.MediaType, m), config
}

func layer(size int, fill byte) []byte { return bytes.Repeat([]byte{fill}, size) }

func TestUsageOfAHandBuiltRegistry(t *testing.T) {
	root := t.TempDir()
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	s := store{t, drv}
	L1, L2, L3, L4, L5, L6, LS := layer(1000, 1), layer(2000, 2), layer(3000, 3), layer(4000, 4), layer(500, 5), layer(600, 6), layer(10000, 9)

	// a/app1: v1 and v2 share LS; an untagged manifest with its own layer.
	m1, c1 := s.image("a/app1", "v1", L1, LS)
	m2, c2 := s.image("a/app1", "v2", L2, LS)
	m3, c3 := s.image("a/app1", "", L3)
	// a/app2: LS again (same namespace), and a tag sharing v1's manifest.
	m4, c4 := s.image("a/app2", "v1", LS, L4)
	s.write(storage.TagCurrentLinkPath("a/app2", "also-v1"), []byte(m4.Digest))
	// b/tool: an index of two platform images, one using LS (another
	// namespace).
	mb1, c5 := s.image("b/tool", "", L5, LS)
	mb2, c6 := s.image("b/tool", "", L6)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{mb1, mb2}}
	idx.SchemaVersion = 2
	mi := s.manifest("b/tool", "multi", idx.MediaType, idx)
	// A blob nothing references.
	orphan := s.blob("", "", layer(7000, 7))

	sz := func(ds ...ocispec.Descriptor) (n int64) {
		for _, d := range ds {
			n += d.Size
		}
		return n
	}
	// By hand: LS (10000) is used by a/app1, a/app2 and b/tool.
	app1Tagged := sz(m1, c1, m2, c2) + 1000 + 2000 + 10000
	app1Exclusive := sz(m1, c1, m2, c2, m3, c3) + 1000 + 2000 + 3000
	app2Tagged := sz(m4, c4) + 10000 + 4000
	app2Exclusive := sz(m4, c4) + 4000
	toolTagged := sz(mi, mb1, c5, mb2, c6) + 500 + 10000 + 600
	toolExclusive := toolTagged - 10000
	nsA := sz(m1, c1, m2, c2, m4, c4) + 1000 + 2000 + 10000 + 4000 // LS once
	nsB := toolTagged
	total := sz(m1, c1, m2, c2, m3, c3, m4, c4, mb1, c5, mb2, c6, mi, orphan) + 1000 + 2000 + 3000 + 4000 + 500 + 600 + 10000

	rep, err := usage.Run(context.Background(), drv, usage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	want := []usage.Repository{
		{Name: "b/tool", Tags: 1, Manifests: 3, Untagged: 0, TaggedBytes: toolTagged, ExclusiveBytes: toolExclusive},
		{Name: "a/app1", Tags: 2, Manifests: 3, Untagged: 1, TaggedBytes: app1Tagged, ExclusiveBytes: app1Exclusive},
		{Name: "a/app2", Tags: 2, Manifests: 1, Untagged: 0, TaggedBytes: app2Tagged, ExclusiveBytes: app2Exclusive},
	}
	// Largest first.
	slices.SortFunc(want, func(a, b usage.Repository) int { return cmp.Compare(b.TaggedBytes, a.TaggedBytes) })
	if fmt.Sprint(rep.Repositories) != fmt.Sprint(want) {
		t.Errorf("repositories:\n got %+v\nwant %+v", rep.Repositories, want)
	}
	wantNS := []usage.Namespace{{Name: "b", Repositories: 1, Tags: 1, Bytes: nsB}, {Name: "a", Repositories: 2, Tags: 4, Bytes: nsA}}
	if nsA > nsB {
		wantNS[0], wantNS[1] = wantNS[1], wantNS[0]
	}
	if fmt.Sprint(rep.Namespaces) != fmt.Sprint(wantNS) {
		t.Errorf("namespaces:\n got %+v\nwant %+v", rep.Namespaces, wantNS)
	}
	if rep.Store.Blobs != 14+7 || rep.Store.TotalBytes != total {
		t.Errorf("store: %d blobs, %d bytes; want 21, %d", rep.Store.Blobs, rep.Store.TotalBytes, total)
	}
	if g := rep.Store.GC; g.Blobs != 1 || g.Bytes != 7000 || g.Manifests != 0 {
		t.Errorf("GC reclaims %+v, want the orphan only", g)
	}
	// -m: the untagged manifest, its config and its layer, and the orphan.
	if g := rep.Store.GCUntagged; g.Manifests != 1 || g.Blobs != 4 || g.Bytes != sz(m3, c3)+3000+7000 || g.LayerLinks != 2 {
		t.Errorf("GC -m reclaims %+v, want 1 manifest, 4 blobs, %d bytes, 2 layer links", g, sz(m3, c3)+3000+7000)
	}
	if top := rep.Top(1); len(top.Repositories) != 1 || top.Repositories[0].Name != rep.Repositories[0].Name || len(top.Namespaces) != 1 {
		t.Errorf("Top(1) = %+v", top)
	}

	// What usage predicts is what GC -m frees.
	gcRep, err := gc.Run(context.Background(), drv, gc.Options{RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if gcRep.BytesFreed != rep.Store.GCUntagged.Bytes || gcRep.BlobsDeleted != rep.Store.GCUntagged.Blobs {
		t.Errorf("GC -m freed %d bytes in %d blobs; usage predicted %+v", gcRep.BytesFreed, gcRep.BlobsDeleted, rep.Store.GCUntagged)
	}
}
