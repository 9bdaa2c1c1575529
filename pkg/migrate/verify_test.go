package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --verify finds a corrupted blob (same size, other bytes: only the
// re-hash sees it), a missing object and a stray 0-byte marker; quick
// mode sees what sizes and key sets tell.
func TestVerifyCatchesCorruptionMissingAndMarkers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 4000, 2)
	f.sync(f.opts())
	if vr, err := Verify(t.Context(), f.opts(), VerifyFull); err != nil || !vr.OK() {
		t.Fatalf("clean verify: %v %+v", err, vr)
	}

	var blob, link string
	var size int
	for rel, c := range f.sourceFiles() {
		switch {
		case strings.Contains(rel, "/blobs/") && len(c) > size:
			blob, size = rel, len(c)
		case strings.HasSuffix(rel, "current/link"):
			link = rel
		}
	}
	// Corrupt the stored blob behind the server's back (versitygw keeps
	// objects as files), keeping its size and ETag.
	stored := filepath.Join(f.gw.Dir, f.bucket, filepath.FromSlash(f.key(blob)))
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0xff
	if err := os.WriteFile(stored, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f.del(f.key(link))
	f.put(f.key("docker/registry/v2/repositories/app/_manifests/tags/"), nil)

	vr, err := Verify(t.Context(), f.opts(), VerifyFull)
	if err != nil {
		t.Fatal(err)
	}
	if vr.OK() || vr.Digest != 1 || vr.Missing != 1 || vr.Markers != 1 || vr.Extra != 0 || vr.Size != 0 {
		t.Fatalf("full verify: %+v", vr)
	}
	kinds := map[string]string{}
	for _, p := range vr.Problems {
		kinds[p.Kind] = p.Path
	}
	if kinds["digest"] != blob || kinds["missing"] != link || !strings.HasSuffix(kinds["marker"], "/tags/") {
		t.Errorf("problems: %+v", vr.Problems)
	}

	qr, err := Verify(t.Context(), f.opts(), VerifyQuick)
	if err != nil {
		t.Fatal(err)
	}
	if qr.Digest != 0 || qr.Missing != 1 || qr.Markers != 1 || qr.Checked != 0 {
		t.Fatalf("quick verify: %+v", qr)
	}

	// A sync puts the missing link back; --delete the marker; the blob
	// has the right size, so only a re-copy by hand fixes it.
	opts := f.opts()
	opts.Delete = true
	r := f.sync(opts)
	if r.Copied != 1 || r.Deleted != 1 {
		t.Fatalf("repair: copied %d, deleted %d", r.Copied, r.Deleted)
	}
	vr, _ = Verify(t.Context(), f.opts(), VerifyFull)
	if vr.Digest != 1 || vr.Missing+vr.Markers != 0 {
		t.Fatalf("after repair: %+v", vr)
	}
}

// A dry run lists what it would do and changes nothing, even with
// --delete.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 1000, 2)
	f.put(f.key("docker/registry/v2/repositories/gone/_manifests/tags/x/current/link"), []byte("sha256:1"))
	before := f.bucketKeys()
	var plan []PlanItem
	opts := f.opts()
	opts.DryRun, opts.Delete = true, true
	opts.Plan = func(p PlanItem) { plan = append(plan, p) }
	r := f.sync(opts)
	src := f.sourceFiles()
	if r.Copied != int64(len(src)) || r.Deleted != 1 || len(plan) != len(src)+1 {
		t.Fatalf("dry run: copied %d deleted %d plan %d; want %d, 1, %d", r.Copied, r.Deleted, len(plan), len(src), len(src)+1)
	}
	after := f.bucketKeys()
	if len(after) != len(before) {
		t.Fatalf("the dry run changed the bucket: %v -> %v", sortedKeys(before), sortedKeys(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
}

// maxrequestspersecond holds for the whole run: listings, checks and
// copies alike.
func TestMaxRequestsPerSecond(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 100, 1) // 1 layer: about 9 files
	src := f.sourceFiles()
	params := map[string]any{}
	for k, v := range f.params {
		params[k] = v
	}
	params["maxrequestspersecond"] = 10
	opts := f.opts()
	opts.Target = f.openTarget(params)
	start := time.Now()
	r := f.sync(opts)
	took := time.Since(start)
	// Puts alone are len(src) requests, plus a dozen listings; the
	// limiter lets the first through at once.
	if min := time.Duration(len(src)-1) * time.Second / 10; took < min {
		t.Fatalf("%d objects in %s with 10 requests/s: want at least %s", r.Copied, took, min)
	}
}
