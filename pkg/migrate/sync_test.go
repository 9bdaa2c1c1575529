package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// A full migration lands every file where the s3 driver reads it, copies
// nothing that is not registry data, and the bucket then serves every
// image completely.
func TestSyncThenServeEveryImage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	images := map[string]v1.Image{
		"group/app:v1":  f.push("group/app", "v1", 3000, 3),
		"group/app:v2":  f.push("group/app", "v2", 2000, 2),
		"tools:latest":  f.push("tools", "latest", 6<<20, 2), // parts of 5 MiB
		"a/b/c/deep:v1": f.push("a/b/c/deep", "v1", 100, 1),
	}
	// State that is not registry data: node heartbeats and an upload in
	// progress (also left behind by a crash as a temporary file).
	for _, p := range []string{"docker/registry/v2/_regctl/nodes/n1.json", "docker/registry/v2/repositories/tools/_uploads/u1/data"} {
		os.MkdirAll(filepath.Join(f.root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(f.root, p), []byte("x"), 0o644)
	}
	src := f.sourceFiles()

	r := f.sync(f.opts())
	if r.Copied != int64(len(src)) || r.Failed != 0 || r.Unchanged != 0 {
		t.Fatalf("copied %d, failed %d, unchanged %d; want %d copied: %+v", r.Copied, r.Failed, r.Unchanged, len(src), r)
	}
	keys := f.bucketKeys()
	for rel, content := range src {
		got, ok := keys[f.key(rel)]
		if !ok {
			t.Errorf("%s not in the bucket", rel)
			continue
		}
		if !strings.HasPrefix(got, strings.Split(got, " ")[0]) || !strings.HasPrefix(got, itoa(len(content))+" ") {
			t.Errorf("%s: bucket has %s, source %d bytes", rel, got, len(content))
		}
	}
	for k := range keys {
		if strings.Contains(k, "_uploads") || strings.Contains(k, "/v2/_regctl/") || strings.HasSuffix(k, "/") {
			t.Errorf("bucket has %s, which is not registry data", k)
		}
	}
	if len(keys) != len(src) {
		t.Errorf("bucket has %d keys, source %d files", len(keys), len(src))
	}
	host := serveBucket(t, f.target)
	for ref, img := range images {
		repo, tag, _ := strings.Cut(ref, ":")
		pullAll(t, host, repo, tag, img)
	}

	vr, err := Verify(t.Context(), f.opts(), VerifyFull)
	if err != nil || !vr.OK() {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	if vr.Checked != int64(len(src)) {
		t.Errorf("verify checked %d objects, want %d", vr.Checked, len(src))
	}

	// An unchanged re-run copies nothing and reads no object back but
	// the links whose ETag it compares.
	r = f.sync(f.opts())
	if r.Copied != 0 || r.Unchanged != int64(len(src)) {
		t.Fatalf("re-run copied %d, unchanged %d; want 0 and %d", r.Copied, r.Unchanged, len(src))
	}
}

func itoa(n int) string { return formatInt(n) }

func formatInt(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// An incremental run copies exactly what changed: a re-tag rewrites the
// tag's current/link with a digest of the same length, so only its
// content tells.
func TestIncrementalCopiesOnlyChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 1000, 2)
	other := f.push("app", "v2", 1000, 2)
	f.push("lib", "v1", 1000, 1)
	f.sync(f.opts())
	before := f.sourceFiles()

	// Re-tag v1 to v2's image (same-size link), push a new image.
	f.write("app", "v1", other)
	f.push("lib", "v2", 500, 1)
	after := f.sourceFiles()
	var changed []string
	for rel, c := range after {
		if before[rel] != c {
			changed = append(changed, rel)
		}
	}
	link := "docker/registry/v2/repositories/app/_manifests/tags/v1/current/link"
	if len(before[link]) != len(after[link]) || before[link] == after[link] {
		t.Fatalf("the re-tag should change %s at the same size: %q -> %q", link, before[link], after[link])
	}

	var plan []PlanItem
	opts := f.opts()
	opts.DryRun = true
	opts.Plan = func(p PlanItem) { plan = append(plan, p) }
	dr := f.sync(opts)
	if dr.Copied != int64(len(changed)) {
		t.Errorf("dry run would copy %d, want %d (%v)", dr.Copied, len(changed), changed)
	}
	reasons := map[string]string{}
	for _, p := range plan {
		reasons[p.Path] = p.Reason
	}
	if reasons[link] != "content" {
		t.Errorf("dry run: %s reason %q, want content (plan %v)", link, reasons[link], plan)
	}

	r := f.sync(f.opts())
	if r.Copied != int64(len(changed)) || r.Unchanged != int64(len(after)-len(changed)) {
		t.Fatalf("copied %d, unchanged %d; want %d (%v) and %d", r.Copied, r.Unchanged, len(changed), changed, len(after)-len(changed))
	}
	got, err := f.target.GetContent(t.Context(), "/"+link)
	if err != nil || string(got) != after[link] {
		t.Fatalf("bucket link = %q, %v; want %q", got, err, after[link])
	}
	pullAll(t, serveBucket(t, f.target), "app", "v1", other)
}

// --delete removes only what the source lacks, markers included, and
// leaves the registry's uploads and regctl's node state alone.
func TestDeleteRemovesOnlyOrphans(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.push("app", "v1", 1000, 2)
	f.sync(f.opts())
	orphan := f.key("docker/registry/v2/repositories/app/_manifests/tags/gone/current/link")
	mark := f.key("docker/registry/v2/repositories/app/_manifests/tags/")
	keep := []string{
		f.key("docker/registry/v2/repositories/app/_uploads/x/data"),
		f.key("docker/registry/v2/_regctl/nodes/n.json"),
		"elsewhere/not-registry",
	}
	f.put(orphan, []byte("sha256:0000"))
	f.put(mark, nil)
	// Markers above the shards: of the root and of a listed folder.
	marks := []string{mark, f.key("docker/registry/v2/"), f.key("docker/registry/v2/repositories/")}
	f.put(marks[1], nil)
	f.put(marks[2], nil)
	for _, k := range keep {
		f.put(k, []byte("keep"))
	}

	r := f.sync(Options{SourceRoot: f.root, Target: f.target, Delete: true, DryRun: true})
	if r.Deleted != 4 || r.Markers != 3 {
		t.Fatalf("dry run: deleted %d, markers %d; want 4 and 3", r.Deleted, r.Markers)
	}
	if _, ok := f.bucketKeys()[orphan]; !ok {
		t.Fatal("the dry run deleted")
	}
	opts := f.opts()
	opts.Delete = true
	r = f.sync(opts)
	if r.Deleted != 4 || r.Copied != 0 {
		t.Fatalf("deleted %d, copied %d; want 4 and 0", r.Deleted, r.Copied)
	}
	keys := f.bucketKeys()
	for _, k := range append(marks, orphan) {
		if _, ok := keys[k]; ok {
			t.Errorf("%s is still there", k)
		}
	}
	for _, k := range keep {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s was deleted", k)
		}
	}
	pullAll(t, serveBucket(t, f.target), "app", "v1", img)
}

// --delete refuses a source that would empty the bucket: no registry
// tree at all, or an empty one (the classic swapped direction).
func TestDeleteRefusesEmptyOrSwappedSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 1000, 1)
	f.sync(f.opts())
	before := f.bucketKeys()

	empty := t.TempDir()
	_, err := Sync(t.Context(), Options{SourceRoot: empty, Target: f.target, Delete: true})
	if !errors.Is(err, ErrNoTree) {
		t.Errorf("no tree: err = %v, want ErrNoTree", err)
	}
	os.MkdirAll(filepath.Join(empty, "docker/registry/v2/blobs"), 0o755)
	os.MkdirAll(filepath.Join(empty, "docker/registry/v2/repositories"), 0o755)
	_, err = Sync(t.Context(), Options{SourceRoot: empty, Target: f.target, Delete: true})
	if !errors.Is(err, ErrEmptySource) {
		t.Errorf("empty tree: err = %v, want ErrEmptySource", err)
	}
	if after := f.bucketKeys(); len(after) != len(before) {
		t.Errorf("the bucket changed: %d keys, was %d", len(after), len(before))
	}
}

// A run cancelled half-way, then run again, copies the rest and nothing
// twice; a large blob's uploaded parts are reused.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := range 12 {
		f.push("app", "v"+formatInt(i), 200, 3)
	}
	src := f.sourceFiles()
	ctx, cancel := context.WithCancel(t.Context())
	var seen atomic.Bool
	opts := f.opts()
	opts.Concurrency = 4
	opts.ProgressEvery = time.Millisecond
	opts.Progress = func(p Progress) {
		if p.Objects >= 20 && !seen.Swap(true) {
			cancel()
		}
	}
	r1, err := Sync(ctx, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: err = %v, want cancelled", err)
	}
	present := 0
	keys := f.bucketKeys()
	for rel := range src {
		if _, ok := keys[f.key(rel)]; ok {
			present++
		}
	}
	if present == 0 || present >= len(src) {
		t.Fatalf("after the cancel %d of %d objects are in the bucket; want some", present, len(src))
	}
	r2 := f.sync(f.opts())
	// Requests cut by the cancel may still complete on the server after
	// the listing above: at most one per request slot.
	if r2.Unchanged+r2.Copied != int64(len(src)) || r2.Unchanged < int64(present) || r2.Unchanged > int64(present+opts.Concurrency) {
		t.Fatalf("second run: unchanged %d, copied %d; want %d (+ up to %d) unchanged of %d (first run copied %d)",
			r2.Unchanged, r2.Copied, present, opts.Concurrency, len(src), r1.Copied)
	}
	if vr, err := Verify(t.Context(), f.opts(), VerifyFull); err != nil || !vr.OK() {
		t.Fatalf("verify: %v %+v", err, vr)
	}

	// A large blob whose first part a killed run uploaded: the part is
	// reused, the rest uploaded.
	big, err := random.Layer(11<<20, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	dg, _ := big.Digest()
	rel := "blobs/sha256/" + dg.Hex[:2] + "/" + dg.Hex + "/data"
	full := filepath.Join(f.root, "docker/registry/v2", rel)
	os.MkdirAll(filepath.Dir(full), 0o755)
	rc, _ := big.Compressed()
	data := readAllT(t, rc)
	os.WriteFile(full, data, 0o644)
	mw, _ := storage.As[storage.MultipartWriter](f.target)
	u, err := mw.CreateUpload(t.Context(), driverPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := md5Of(strings.NewReader(string(data[:5<<20])))
	if _, err := mw.UploadPart(t.Context(), u, 1, strings.NewReader(string(data[:5<<20])), 5<<20, sum); err != nil {
		t.Fatal(err)
	}
	r3 := f.sync(f.opts())
	if r3.Copied != 1 || r3.ResumedParts != 1 {
		t.Fatalf("copied %d, resumed parts %d; want 1 and 1", r3.Copied, r3.ResumedParts)
	}
	got, err := f.target.GetContent(t.Context(), storage.Root+"/"+rel)
	if err != nil || string(got) != string(data) {
		t.Fatalf("the resumed blob differs (%v)", err)
	}
}

// Symbolic links planted in the source are reported and never followed:
// nothing outside the root reaches the bucket, what the bucket already
// holds below a link is not deleted as an orphan, and Verify fails on
// them (so a cutover rolls back). The rest is copied as usual.
func TestSyncNeverFollowsSymlinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.push("app", "v1", 1000, 1)
	s := testtools.PlantSymlinks(t, f.root)
	// An object below a link's path, from an earlier sync.
	earlier := f.key("docker/registry/v2/repositories/evil/app/_manifests/tags/v1/current/link")
	f.put(earlier, []byte(s.Manifest))

	opts := f.opts()
	opts.Delete = true
	r := f.sync(opts)
	want := []string{s.Links[0][1:], s.Links[1][1:], s.Links[2][1:]} // _uploads is never migrated
	if r.Symlinks != 3 || !slices.Equal(slices.Sorted(slices.Values(r.SymlinkPaths)), want) {
		t.Errorf("symlinks: %d %v, want %v", r.Symlinks, r.SymlinkPaths, want)
	}
	keys := f.bucketKeys()
	if _, ok := keys[earlier]; !ok {
		t.Error("the object below a link was deleted")
	}
	for k := range keys {
		for _, l := range s.Links {
			if strings.HasPrefix("/"+strings.TrimPrefix(k, "registry/"), l) && k != earlier {
				t.Errorf("copied through a link: %s", k)
			}
		}
		if b := readAllT(t, f.get(k)); strings.Contains(string(b), s.Secret) || strings.Contains(string(b), "outside the root") {
			t.Errorf("%s holds a file from outside the root", k)
		}
	}
	s.CheckOutside(t)
	s.CheckLinks(t)
	pullAll(t, serveBucket(t, f.target), "app", "v1", img)

	v, err := Verify(t.Context(), f.opts(), VerifyFull)
	if err != nil || v.OK() || v.Symlinks != 3 {
		t.Errorf("verify: %+v, %v; want 3 symlinks, not OK", v, err)
	}
}
