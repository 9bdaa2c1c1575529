package gc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"regctl/internal/testtools"
	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// cacheEntries is the manifest digests the cache in drv holds, nil when
// there is none.
func cacheEntries(t *testing.T, drv storage.Driver) []string {
	t.Helper()
	b, err := drv.GetContent(context.Background(), gc.ManifestCachePath)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var ds []string
	for _, l := range lines[1 : len(lines)-1] { // header, checksum
		ds = append(ds, strings.Fields(l)[0])
	}
	return ds
}

// sameRun compares what two runs did, the cache figures aside.
func sameRun(t *testing.T, what string, wantRep *gc.Report, want []string, rep *gc.Report, got []string) {
	t.Helper()
	a, b := *wantRep, *rep
	a.Duration, b.Duration, a.ManifestsFromCache, b.ManifestsFromCache = 0, 0, 0, 0
	if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) || !slices.Equal(want, got) {
		t.Errorf("%s: report %+v, deletions %q\nwant report %+v, deletions %q", what, b, got, a, want)
	}
}

// On S3 a run keeps what each manifest references in the storage, and
// the next run reads only manifests the cache does not vouch for: its
// outcome is the same as with no cache at all, also after a manifest's
// blob changed under the cache and after the cache itself was damaged.
func TestManifestCacheS3(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	ctx := context.Background()
	drv := newS3(t, g, g.Bucket(t))
	f := newFixture(t, drv, 77)
	f.regctlLinks = true
	f.generate(genOptions{Repos: 4, Ops: 40, Referrers: true, Deletes: true, Docker: true})
	// A tagged image whose layers nothing else has: what it references
	// decides whether they are collected.
	own := f.image("solo", "v1", f.randomBytes(), f.randomBytes())
	dry := gc.Options{RemoveUntagged: true, DryRun: true}

	cold, coldDel := run(t, drv, dry)
	if cold.ManifestsFromCache != 0 {
		t.Fatalf("first run took %d manifests from a cache that did not exist", cold.ManifestsFromCache)
	}
	entries := cacheEntries(t, drv)
	if len(entries) == 0 {
		t.Fatal("the first run left no manifest cache")
	}
	if !slices.Contains(entries, own.String()) {
		t.Fatalf("cache lacks %s", own)
	}
	warm, warmDel := run(t, drv, dry)
	if warm.ManifestsFromCache != len(entries) {
		t.Errorf("second run took %d manifests from the cache, want all %d", warm.ManifestsFromCache, len(entries))
	}
	sameRun(t, "warm run", cold, coldDel, warm, warmDel)

	// The blob of "own" now holds another manifest, one without layers:
	// its MD5 no longer matches the entry, so it is read again.
	other := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[]}`, f.configOf(own))
	if err := drv.PutContent(ctx, storage.BlobDataPath(own), other); err != nil {
		t.Fatal(err)
	}
	changed, changedDel := run(t, drv, dry)
	if changed.ManifestsFromCache != len(entries)-1 {
		t.Errorf("after the change %d manifests came from the cache, want %d", changed.ManifestsFromCache, len(entries)-1)
	}
	if slices.Equal(changedDel, coldDel) {
		t.Fatal("the changed manifest changed nothing: the test proves nothing")
	}
	if err := drv.Delete(ctx, gc.ManifestCachePath); err != nil {
		t.Fatal(err)
	}
	fresh, freshDel := run(t, drv, dry)
	sameRun(t, "with the cache after the change", fresh, freshDel, changed, changedDel)

	// A damaged cache is not used, and the run writes a good one.
	if err := drv.PutContent(ctx, gc.ManifestCachePath, []byte("regctl gc manifest cache v1\nsha256:zz\n")); err != nil {
		t.Fatal(err)
	}
	damaged, damagedDel := run(t, drv, dry)
	if damaged.ManifestsFromCache != 0 {
		t.Errorf("a damaged cache gave %d manifests", damaged.ManifestsFromCache)
	}
	sameRun(t, "with a damaged cache", fresh, freshDel, damaged, damagedDel)
	if n := len(cacheEntries(t, drv)); n != len(entries) {
		t.Errorf("the cache rewritten after damage has %d entries, want %d", n, len(entries))
	}

	// A run that deletes drops the manifests it deleted.
	real := dry
	real.DryRun = false
	_, del := run(t, drv, real)
	after := cacheEntries(t, drv)
	gone := 0
	for _, l := range del {
		f := strings.Fields(l)
		if f[0] != gc.KindBlob {
			continue
		}
		if slices.Contains(after, f[1]) { // "blob <digest>"
			t.Errorf("the cache still holds deleted manifest %s", f[1])
		}
		if slices.Contains(entries, f[1]) {
			gone++
		}
	}
	if gone == 0 || len(after) != len(entries)-gone {
		t.Errorf("after deleting %d manifest blobs the cache has %d entries, had %d", gone, len(after), len(entries))
	}
}
