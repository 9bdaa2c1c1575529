package gc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// newFS is a filesystem driver on a fresh folder. Its PutContent skips
// the real driver's fsyncs (file creation is slow on the test machines,
// and tests only write fixtures through it); everything else is the real
// driver's.
func newFS(t testing.TB) (storage.Driver, string) {
	t.Helper()
	dir := t.TempDir()
	return &fastFS{Driver: fsDriver(t, dir), root: dir}, dir
}

type fastFS struct {
	storage.Driver
	root string
}

func (f *fastFS) PutContent(ctx context.Context, p string, b []byte) error {
	full := filepath.Join(f.root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, 0o644)
}

// run runs GC and returns the report and the deletions as
// "kind repository digest[ tag]" lines, sorted.
func run(t testing.TB, drv storage.Driver, opts gc.Options) (*gc.Report, []string) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []string
	)
	opts.OnDelete = func(d gc.Deletion) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, deletionLine(d))
	}
	rep, err := gc.Run(context.Background(), drv, opts)
	if err != nil {
		t.Fatalf("gc.Run: %v", err)
	}
	slices.Sort(got)
	return rep, got
}

func deletionLine(d gc.Deletion) string {
	s := d.Kind + " " + d.Repository + " " + d.Digest.String()
	if d.Tag != "" {
		s += " " + d.Tag
	}
	return strings.TrimSpace(strings.ReplaceAll(s, "  ", " "))
}

// ids names the digests a scenario builds, for its expectations.
type ids map[string]digest.Digest

// del formats expected deletions: "manifest repo NAME" with NAME looked
// up in ids.
func (id ids) del(lines ...string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		f[len(f)-1] = id.d(f[len(f)-1])
		if f[0] == "tag-index" { // "tag-index repo tag NAME" -> "tag-index repo digest tag"
			f = []string{f[0], f[1], f[3], f[2]}
		}
		out = append(out, strings.Join(f, " "))
	}
	slices.Sort(out)
	return out
}

func (id ids) d(name string) string {
	d, ok := id[name]
	if !ok {
		panic("no digest named " + name)
	}
	return d.String()
}

// configOf is the config digest of an image the fixture pushed.
func (f *fixture) configOf(d digest.Digest) digest.Digest { return f.docs[d].blobs[0] }

type scenario struct {
	name  string
	build func(f *fixture) ids
	m     bool
	// want lists the deletions, see ids.del; nil skips the check.
	want func(id ids) []string
	// problems are the kinds of problem expected, sorted.
	problems []string
	// malformed trees skip the model checks (which assume good data)
	// and the comparison with Distribution (which aborts on them).
	malformed bool
	// differs: Run deliberately keeps more than Distribution here.
	differs bool
	// wantS3, when set, replaces want on S3, whose key order puts
	// repositories in another order.
	wantS3 func(id ids) []string
}

var (
	l1 = []byte("layer one, only in the first image")
	l2 = []byte("layer two, shared")
	l3 = []byte("layer three, only in the second image")
)

var scenarios = []scenario{
	{
		name:  "empty storage",
		m:     true,
		build: func(f *fixture) ids { return ids{} },
		want:  func(id ids) []string { return nil },
		// Distribution fails: "Path not found: .../repositories".
		differs: true,
	},
	{
		name: "tag overwritten, plain",
		build: func(f *fixture) ids {
			a := f.image("app", "latest", l1, l2)
			b := f.image("app", "latest", l2, l3)
			return ids{"A": a, "B": b}
		},
		want: func(id ids) []string { return nil },
	},
	{
		name: "tag overwritten, -m",
		m:    true,
		build: func(f *fixture) ids {
			a := f.image("app", "latest", l1, l2)
			b := f.image("app", "latest", l2, l3)
			return ids{"A": a, "B": b, "cA": f.configOf(a), "L1": digest.FromBytes(l1)}
		},
		want: func(id ids) []string {
			return id.del("manifest app A", "tag-index app latest A",
				"layer-link app cA", "layer-link app L1", "blob A", "blob cA", "blob L1")
		},
	},
	{
		name: "tag deleted, -m",
		m:    true,
		build: func(f *fixture) ids {
			a := f.image("app", "v1", l1)
			f.image("app", "v2", l2)
			f.untag("app", "v1")
			return ids{"A": a, "cA": f.configOf(a), "L1": digest.FromBytes(l1)}
		},
		// The tag folder went with its index: no index entry to delete.
		want: func(id ids) []string {
			return id.del("manifest app A", "layer-link app cA", "layer-link app L1", "blob A", "blob cA", "blob L1")
		},
	},
	{
		name: "multi-arch index: untagged children kept, old index collected",
		m:    true,
		build: func(f *fixture) ids {
			c1 := f.image("multi", "", l1)
			c2 := f.image("multi", "", l2)
			old := f.index("multi", "latest", c1, c2)
			c3 := f.image("multi", "", l3)
			idx := f.index("multi", "latest", c1, c3)
			return ids{"old": old, "idx": idx, "c2": c2, "cc2": f.configOf(c2), "L2": digest.FromBytes(l2)}
		},
		want: func(id ids) []string {
			return id.del("manifest multi old", "tag-index multi latest old", "manifest multi c2",
				"layer-link multi cc2", "layer-link multi L2", "blob old", "blob c2", "blob cc2", "blob L2")
		},
	},
	{
		name: "docker manifest list and schema 2",
		m:    true,
		build: func(f *fixture) ids {
			f.docker = true
			c1 := f.image("dock", "", l1)
			c2 := f.image("dock", "", l2)
			idx := f.index("dock", "latest", c1, c2)
			gone := f.image("dock", "", l3)
			f.docker = false
			return ids{"idx": idx, "gone": gone, "cg": f.configOf(gone), "L3": digest.FromBytes(l3)}
		},
		want: func(id ids) []string {
			return id.del("manifest dock gone", "layer-link dock cg", "layer-link dock L3", "blob gone", "blob cg", "blob L3")
		},
	},
	{
		name: "shared layers across repositories",
		m:    true,
		build: func(f *fixture) ids {
			f.image("one", "latest", l1, l2)
			b := f.image("two", "latest", l2, l3)
			f.image("two", "latest", l1) // b untagged
			return ids{"B": b, "cB": f.configOf(b), "L2": digest.FromBytes(l2), "L3": digest.FromBytes(l3)}
		},
		// l2 stays, and so does its link in "two": the mark set is
		// global, and "one" marked it first.
		want: func(id ids) []string {
			return id.del("manifest two B", "tag-index two latest B", "layer-link two cB",
				"layer-link two L3", "blob B", "blob cB", "blob L3")
		},
	},
	{
		name: "layer link unused here, used by a later repository: deleted",
		build: func(f *fixture) ids {
			f.layer("a", l1) // a push that never finished
			f.image("a", "latest", l2)
			f.image("b", "latest", l1)
			return ids{"L1": digest.FromBytes(l1)}
		},
		want: func(id ids) []string { return id.del("layer-link a L1") },
	},
	{
		name: "layer link unused here, used by an earlier repository: kept",
		build: func(f *fixture) ids {
			f.layer("c", l1)
			f.image("c", "latest", l2)
			f.image("b", "latest", l1)
			return ids{}
		},
		want: func(id ids) []string { return nil },
	},
	{
		name: "filesystem order: a, a/b, a-b",
		build: func(f *fixture) ids {
			// a-b's orphan link survives only if a/b (which uses l1)
			// comes first, as on the filesystem.
			f.image("a", "latest", l2)
			f.layer("a-b", l1)
			f.image("a-b", "latest", l2)
			f.image("a/b", "latest", l1)
			return ids{"L1": digest.FromBytes(l1)}
		},
		want: func(id ids) []string { return nil },
		// On S3, "a-b/..." sorts before "a/...": a-b is met first.
		wantS3: func(id ids) []string { return id.del("layer-link a-b L1") },
	},
	{
		name: "untagged here, tagged in another repository: kept",
		m:    true,
		build: func(f *fixture) ids {
			a := f.image("x", "latest", l1)
			f.mount("x", "y", "", a)
			f.image("y", "latest", l2)
			return ids{}
		},
		want: func(id ids) []string { return nil },
	},
	{
		name: "referrers of kept manifests kept, of deleted ones deleted",
		m:    true,
		build: func(f *fixture) ids {
			f.regctlLinks = true
			img := f.image("signed", "latest", l1)
			sig := f.referrer("signed", img)
			sigsig := f.referrer("signed", sig) // a referrer of a referrer
			old := f.image("signed", "", l3)
			oldSig := f.referrer("signed", old)
			c1 := f.image("signed", "", l2)
			idx := f.index("signed", "multi", c1)
			childSig := f.referrer("signed", c1)
			dangling := f.referrer("signed", digest.FromString("never pushed"))
			id := ids{"img": img, "sig": sig, "sigsig": sigsig, "old": old, "oldSig": oldSig, "idx": idx, "childSig": childSig,
				"dangling": dangling, "cOld": f.configOf(old), "L3": digest.FromBytes(l3)}
			for _, n := range []string{"oldSig", "dangling"} {
				id["sig-"+n] = f.docs[id[n]].blobs[1]
			}
			return id
		},
		want: func(id ids) []string {
			return id.del("manifest signed old", "manifest signed oldSig", "manifest signed dangling",
				"referrer-link signed oldSig", "referrer-link signed dangling",
				"layer-link signed cOld", "layer-link signed L3", "layer-link signed sig-oldSig", "layer-link signed sig-dangling",
				"blob old", "blob oldSig", "blob dangling", "blob cOld", "blob L3", "blob sig-oldSig", "blob sig-dangling")
		},
		differs: true,
	},
	{
		name: "no tags folder: untagged manifests deleted",
		m:    true,
		build: func(f *fixture) ids {
			a := f.image("bydigest", "", l1)
			return ids{"A": a, "cA": f.configOf(a), "L1": digest.FromBytes(l1)}
		},
		want: func(id ids) []string {
			return id.del("manifest bydigest A", "layer-link bydigest cA", "layer-link bydigest L1", "blob A", "blob cA", "blob L1")
		},
		problems: []string{gc.ProblemDeviation},
		differs:  true,
	},
	{
		name: "0-byte revision link of a tagged image: kept",
		m:    true,
		build: func(f *fixture) ids {
			a := f.image("z", "latest", l1)
			f.put(storage.ManifestRevisionLinkPath("z", a), nil)
			return ids{}
		},
		want:      func(id ids) []string { return nil },
		problems:  []string{gc.ProblemCorruptLink},
		malformed: true,
	},
	{
		name: "corrupt tag link: every revision of the repository kept",
		m:    true,
		build: func(f *fixture) ids {
			f.image("t", "latest", l1)
			f.image("t", "latest", l2)
			f.image("t", "other", l3)
			f.put(storage.TagCurrentLinkPath("t", "other"), []byte("sha256:nothex\n"))
			return ids{}
		},
		want:      func(id ids) []string { return nil },
		problems:  []string{gc.ProblemCorruptLink},
		malformed: true,
	},
	{
		name: "corrupt layer link: left alone",
		build: func(f *fixture) ids {
			f.image("l", "latest", l2)
			d := f.layer("l", l1).Digest
			f.put(storage.LayerLinkPath("l", d), []byte("garbage"))
			return ids{"L1": d}
		},
		// The blob is unreferenced and goes; the link cannot be read.
		want:      func(id ids) []string { return id.del("blob L1") },
		problems:  []string{gc.ProblemCorruptLink},
		malformed: true,
	},
	{
		name: "links to missing blobs: left alone",
		m:    true,
		build: func(f *fixture) ids {
			f.image("mb", "latest", l2)
			a := f.image("mb", "", l1)
			f.del(storage.BlobDir(a))
			l3d := f.layer("mb", l3).Digest
			f.del(storage.BlobDir(l3d))
			return ids{"cA": f.configOf(a), "L1": digest.FromBytes(l1)}
		},
		// The manifest whose blob is gone is not a revision to
		// Distribution: its blobs are collected, it is not.
		want: func(id ids) []string {
			return id.del("layer-link mb cA", "layer-link mb L1", "blob cA", "blob L1")
		},
		problems:  []string{gc.ProblemMissingBlob, gc.ProblemMissingBlob},
		malformed: true,
	},
	{
		name: "unparseable tagged manifest: kept with every digest in it",
		m:    true,
		build: func(f *fixture) ids {
			layer := f.layer("bad", l1).Digest
			f.layer("bad", l2)
			body := []byte(`{"schemaVersion": 1, "fsLayers": [{"blobSum": "` + layer.String() + `"}]}`)
			d := f.manifest("bad", "latest", body, &doc{blobs: []digest.Digest{layer}})
			return ids{"bad": d, "L2": digest.FromBytes(l2)}
		},
		want:      func(id ids) []string { return id.del("layer-link bad L2", "blob L2") },
		problems:  []string{gc.ProblemBadManifest},
		malformed: true,
	},
	{
		name: "invalid repository name: left alone",
		m:    true,
		build: func(f *fixture) ids {
			f.image("Bad/Name", "latest", l1)
			f.image("Bad/Name", "latest", l2)
			return ids{}
		},
		want:      func(id ids) []string { return nil },
		problems:  []string{gc.ProblemBadRepository},
		malformed: true,
	},
	{
		name: "index child marked without its references elsewhere: kept",
		m:    true,
		build: func(f *fixture) ids {
			// In "a", an index names c, which "a" does not have;
			// "b" has c untagged under a tagged index. Distribution
			// marks c in "a" without its references, then skips it
			// in "b": c's layer would go.
			c := f.image("b", "", l1)
			f.index("b", "latest", c)
			f.index("a", "latest", c)
			f.del(storage.ManifestRevisionLinkPath("a", c))
			return ids{}
		},
		want:      func(id ids) []string { return nil },
		problems:  []string{gc.ProblemKeptForSafety, gc.ProblemKeptForSafety, gc.ProblemKeptForSafety, gc.ProblemKeptForSafety},
		malformed: true,
	},
	{
		name: "untagged here, tagged in a later repository: layer links kept",
		m:    true,
		build: func(f *fixture) ids {
			// x is untagged in "a" and tagged in "b". Distribution
			// judges a's links before b marks x's config and layer,
			// and deletes them: x would stay in "a" (its digest is
			// marked) but not pull there. Run keeps the links.
			x := f.image("a", "latest", l1)
			f.mount("a", "b", "latest", x)
			f.image("a", "latest", l2)
			return ids{}
		},
		want: func(id ids) []string { return nil },
	},
	{
		name: "untagged index here, tagged in a later repository: its children's links kept",
		m:    true,
		build: func(f *fixture) ids {
			c1 := f.image("a", "", l1)
			c2 := f.image("a", "", l3)
			idx := f.index("a", "latest", c1, c2)
			f.mount("a", "b", "latest", idx)
			f.image("a", "latest", l2)
			return ids{}
		},
		want: func(id ids) []string { return nil },
	},
	{
		name: "repository emptied through the API: links to collected or missing blobs deleted",
		build: func(f *fixture) ids {
			x := f.image("gone", "latest", l1)
			f.layer("gone", l2) // also used by "kept": stays, with its link
			f.image("kept", "latest", l2)
			l3d := f.layer("gone", l3).Digest
			f.del(storage.BlobDir(l3d))
			f.deleteManifest("gone", x)
			f.del(storage.RepositoryDir("gone") + "/_manifests")
			return ids{"X": x, "cX": f.configOf(x), "L1": digest.FromBytes(l1), "L3": l3d}
		},
		want: func(id ids) []string {
			return id.del("layer-link gone cX", "layer-link gone L1", "layer-link gone L3", "blob X", "blob cX", "blob L1")
		},
	},
	{
		name: "uploads untouched",
		m:    true,
		build: func(f *fixture) ids {
			f.image("up", "latest", l1)
			f.put(storage.UploadDataPath("up", "u1"), []byte("partial"))
			f.put(storage.UploadStartedAtPath("up", "u1"), []byte("2024-01-01T00:00:00Z"))
			return ids{}
		},
		want: func(id ids) []string { return nil },
	},
}

func TestScenarios(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			drv, _ := newFS(t)
			runScenario(t, drv, sc)
		})
	}
}

func runScenario(t *testing.T, drv storage.Driver, sc scenario) {
	t.Helper()
	f := newFixture(t, drv, 1)
	id := sc.build(f)
	before := snapshot(t, drv)

	// A dry run changes nothing and announces what a run does.
	dryRep, dry := run(t, drv, gc.Options{RemoveUntagged: sc.m, DryRun: true})
	if d := diffTrees(before, snapshot(t, drv)); d != "" {
		t.Fatalf("dry run changed the tree:\n%s", d)
	}
	rep, got := run(t, drv, gc.Options{RemoveUntagged: sc.m})
	if !slices.Equal(dry, got) {
		t.Errorf("dry run announced\n  %s\nrun deleted\n  %s", strings.Join(dry, "\n  "), strings.Join(got, "\n  "))
	}
	if !dryRep.DryRun || rep.DryRun {
		t.Errorf("DryRun in reports: %v, %v", dryRep.DryRun, rep.DryRun)
	}
	want := sc.want
	if sc.wantS3 != nil && drv.Name() == "s3" {
		want = sc.wantS3
	}
	if want != nil {
		if want := want(id); !slices.Equal(got, want) {
			t.Errorf("deleted\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, sc.problems) {
		t.Errorf("problems %v, want kinds %v", rep.Problems, sc.problems)
	}
	checkCounts(t, rep, got)
	if !sc.malformed {
		checkAfter(t, newModel(before), snapshot(t, drv), sc.m)
	}
	// A second run finds nothing more.
	if _, again := run(t, drv, gc.Options{RemoveUntagged: sc.m}); len(again) > 0 {
		t.Errorf("second run deleted %v", again)
	}
}

// checkCounts checks the report's counters against the deletions.
func checkCounts(t *testing.T, rep *gc.Report, lines []string) {
	t.Helper()
	n := map[string]int{}
	for _, l := range lines {
		n[strings.Fields(l)[0]]++
	}
	got := fmt.Sprint(rep.ManifestsDeleted, rep.TagIndexEntriesDeleted, rep.ReferrerLinksDeleted, rep.LayerLinksDeleted, rep.BlobsDeleted)
	want := fmt.Sprint(n[gc.KindManifest], n[gc.KindTagIndex], n[gc.KindReferrerLink], n[gc.KindLayerLink], n[gc.KindBlob])
	if got != want {
		t.Errorf("report counts %s, deletions %s", got, want)
	}
}

// A cancelled context stops Run before it deletes anything.
func TestCancelledBeforeSweep(t *testing.T) {
	t.Parallel()
	drv, _ := newFS(t)
	f := newFixture(t, drv, 1)
	f.image("app", "latest", l1)
	f.image("app", "latest", l2)
	before := snapshot(t, drv)
	ctx, cancel := context.WithCancel(context.Background())
	phases := map[gc.Phase]bool{}
	_, err := gc.Run(ctx, drv, gc.Options{RemoveUntagged: true, Progress: func(p gc.Phase, _, _ int) {
		phases[p] = true
		if p == gc.PhaseMark {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if d := diffTrees(before, snapshot(t, drv)); d != "" {
		t.Errorf("a run cancelled before sweeping changed the tree:\n%s", d)
	}
	for _, p := range []gc.Phase{gc.PhaseScan, gc.PhaseRead, gc.PhaseMark} {
		if !phases[p] {
			t.Errorf("no progress reported for %s", p)
		}
	}
}
