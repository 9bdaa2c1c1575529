package gc_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// plainFS is the filesystem driver without its optional capabilities,
// so the sweep deletes one path at a time.
type plainFS struct{ storage.Driver }

// sweepDrivers are the three ways a sweep deletes: units (the
// filesystem), DeleteMany batches, one Delete per path.
var sweepDrivers = []struct {
	name string
	wrap func(storage.Driver) storage.Driver
}{
	{"units", func(d storage.Driver) storage.Driver { return d }},
	{"batched", func(d storage.Driver) storage.Driver { return &batchFS{Driver: d} }},
	{"plain", func(d storage.Driver) storage.Driver { return plainFS{d} }},
}

func load(t *testing.T, drv storage.Driver, opts gc.Options) *gc.Snapshot {
	t.Helper()
	s, err := gc.Load(context.Background(), drv, opts)
	if err != nil {
		t.Fatalf("gc.Load: %v", err)
	}
	return s
}

var stages = []gc.Stage{gc.StageManifestLinks, gc.StageManifests, gc.StageLayerLinks, gc.StageBlobs}

// planOrder is a plan's deletions as lines, in sweep order.
func planOrder(p *gc.Plan) []string {
	var out []string
	for _, st := range stages {
		for d := range p.Deletions(st) {
			out = append(out, deletionLine(d))
		}
	}
	return out
}

func planLines(p *gc.Plan) []string {
	out := planOrder(p)
	slices.Sort(out)
	return out
}

// sameReport compares reports but their durations.
func sameReport(t *testing.T, want, got *gc.Report) {
	t.Helper()
	w, g := *want, *got
	w.Duration, g.Duration = 0, 0
	if !reflect.DeepEqual(w, g) {
		t.Errorf("report\n  %+v\nwant (Run's)\n  %+v", g, w)
	}
}

// Run and its phases called one by one do the same: same deletions,
// report and tree, on every way of deleting; and a plan lists its
// deletions in the order a dry run announces them.
func TestRunIsItsPhases(t *testing.T) {
	t.Parallel()
	for _, sd := range sweepDrivers {
		for _, m := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/m=%v", sd.name, m), func(t *testing.T) {
				t.Parallel()
				drv, dir := newFS(t)
				f := newFixture(t, drv, 4000)
				f.regctlLinks = true
				f.generate(genOptions{Repos: 5, Ops: 40, Referrers: true, Deletes: true, Docker: true})

				var announced []string
				dry := load(t, sd.wrap(drv), gc.Options{RemoveUntagged: m, DryRun: true,
					OnDelete: func(d gc.Deletion) { announced = append(announced, deletionLine(d)) }})
				dp := dry.Plan(dry.Mark(gc.Roots{}))
				if err := dry.SweepFiltered(context.Background(), dp, nil); err != nil {
					t.Fatal(err)
				}
				if got := planOrder(dp); len(got) == 0 || !slices.Equal(got, announced) {
					t.Errorf("plan lists\n  %s\na dry run announces\n  %s", strings.Join(got, "\n  "), strings.Join(announced, "\n  "))
				}

				one, two := t.TempDir(), t.TempDir()
				copyTree(t, dir, one)
				copyTree(t, dir, two)
				wantRep, want := run(t, sd.wrap(fsDriver(t, one)), gc.Options{RemoveUntagged: m})

				var (
					mu  sync.Mutex
					got []string
				)
				s := load(t, sd.wrap(fsDriver(t, two)), gc.Options{RemoveUntagged: m, OnDelete: func(d gc.Deletion) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, deletionLine(d))
				}})
				p := s.Plan(s.Mark(gc.Roots{}))
				if err := s.SweepFiltered(context.Background(), p, nil); err != nil {
					t.Fatal(err)
				}
				s.SaveManifestCache(context.Background())
				slices.Sort(got)
				if !slices.Equal(got, want) || !slices.Equal(planLines(p), want) {
					t.Errorf("phases deleted\n  %s\nRun deleted\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				sameReport(t, wantRep, s.Report())
				if d := diffTrees(snapshot(t, fsDriver(t, one)), snapshot(t, fsDriver(t, two))); d != "" {
					t.Errorf("trees differ:\n%s", d)
				}
			})
		}
	}
}

// buildAllStages is a registry where -m deletes something in every
// stage: an untagged image with a tag index entry, its referrer with a
// referrer link, their layer links and blobs.
func buildAllStages(f *fixture) {
	f.regctlLinks = true
	a := f.image("app", "latest", l1, l2)
	f.referrer("app", a)
	f.image("app", "latest", l2, l3)
}

// Hooks fire in phase order: after load, after mark, then each stage in
// sweep order with its batches, and every deletion is in a batch of its
// stage.
func TestHooksFireInOrder(t *testing.T) {
	t.Parallel()
	for _, sd := range sweepDrivers {
		for _, dry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dry=%v", sd.name, dry), func(t *testing.T) {
				t.Parallel()
				drv, _ := newFS(t)
				buildAllStages(newFixture(t, drv, 1))
				var (
					mu      sync.Mutex
					events  []string
					seen    = map[string]bool{} // since the last stage started
					batched = map[string]bool{}
					deleted []string
				)
				event := func(s string) {
					mu.Lock()
					defer mu.Unlock()
					if strings.HasPrefix(s, "stage ") {
						clear(seen)
					}
					if !seen[s] { // a stage's batches and deletions: one event each
						seen[s] = true
						events = append(events, s)
					}
				}
				kindStage := map[string]gc.Stage{gc.KindTagIndex: gc.StageManifestLinks, gc.KindReferrerLink: gc.StageManifestLinks,
					gc.KindManifest: gc.StageManifests, gc.KindLayerLink: gc.StageLayerLinks, gc.KindBlob: gc.StageBlobs}
				hooks := gc.Hooks{
					AfterLoad:   func() { event("load") },
					AfterMark:   func() { event("mark") },
					BeforeStage: func(s gc.Stage) { event("stage " + s.String()) },
					BeforeBatch: func(s gc.Stage, ds []gc.Deletion) {
						event("batch " + s.String())
						mu.Lock()
						defer mu.Unlock()
						for _, d := range ds {
							if kindStage[d.Kind] != s {
								t.Errorf("%s deletion in a batch of stage %s", d.Kind, s)
							}
							batched[deletionLine(d)] = true
						}
					},
				}
				_, err := gc.Run(context.Background(), sd.wrap(drv), gc.Options{RemoveUntagged: true, DryRun: dry, Hooks: hooks,
					OnDelete: func(d gc.Deletion) {
						event("delete")
						mu.Lock()
						defer mu.Unlock()
						deleted = append(deleted, deletionLine(d))
					}})
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"load", "mark"}
				for _, s := range stages {
					want = append(want, "stage "+s.String(), "batch "+s.String(), "delete")
				}
				if !slices.Equal(events, want) {
					t.Errorf("events\n  %s\nwant\n  %s", strings.Join(events, "\n  "), strings.Join(want, "\n  "))
				}
				for _, d := range deleted {
					if !batched[d] {
						t.Errorf("%s deleted, but in no batch", d)
					}
				}
				if len(batched) != len(deleted) {
					t.Errorf("%d deletions in batches, %d deleted", len(batched), len(deleted))
				}
			})
		}
	}
}

// A hook can stop a run between two stages: cancelled before the blobs,
// the run has deleted the manifests and layer links and no blob.
func TestHookCancelsBeforeBlobs(t *testing.T) {
	t.Parallel()
	drv, _ := newFS(t)
	buildAllStages(newFixture(t, drv, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := gc.Run(ctx, drv, gc.Options{RemoveUntagged: true, Hooks: gc.Hooks{BeforeStage: func(s gc.Stage) {
		if s == gc.StageBlobs {
			cancel()
		}
	}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if rep.ManifestsDeleted == 0 || rep.LayerLinksDeleted == 0 || rep.BlobsDeleted != 0 {
		t.Errorf("deleted %d manifests, %d layer links, %d blobs; want some, some, none",
			rep.ManifestsDeleted, rep.LayerLinksDeleted, rep.BlobsDeleted)
	}
}

// promisePath is where TestKeepIsAskedRightBeforeTheBatch's stand-in for
// a promise marker says "keep d in repo" ("" for the blob).
func promisePath(repo string, d digest.Digest) string {
	if repo == "" {
		repo = "-"
	}
	return storage.Root + "/_regctl/test-promises/" + d.Encoded() + "/" + repo
}

// A reference added after Load (as an online run's writes are) is not
// in the snapshot: Run deletes what it needs. SweepFiltered asks keep
// about each object right before its batch, so a marker written as late
// as the last stage starts saves the object.
func TestKeepIsAskedRightBeforeTheBatch(t *testing.T) {
	t.Parallel()
	g := []byte("a layer uploaded, its push not finished")
	build := func(t *testing.T) (storage.Driver, *fixture, digest.Digest) {
		drv, _ := newFS(t)
		f := newFixture(t, drv, 1)
		f.image("app", "latest", l1)
		gd := f.layer("app", g).Digest
		f.blob([]byte("garbage nobody will claim"))
		return drv, f, gd
	}
	// push finishes the upload: a manifest that needs g, tagged.
	push := func(f *fixture) digest.Digest { return f.image("app", "pushed", g) }
	pulls := func(t *testing.T, drv storage.Driver, pushed digest.Digest) error {
		for _, p := range []string{storage.BlobDataPath(pushed), storage.LayerLinkPath("app", digest.FromBytes(g)), storage.BlobDataPath(digest.FromBytes(g))} {
			if _, err := drv.Stat(context.Background(), p); err != nil {
				return err
			}
		}
		return nil
	}

	t.Run("Run", func(t *testing.T) {
		t.Parallel()
		drv, f, gd := build(t)
		var pushed digest.Digest
		rep, err := gc.Run(context.Background(), drv, gc.Options{Hooks: gc.Hooks{AfterLoad: func() { pushed = push(f) }}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.Stat(context.Background(), storage.BlobDataPath(gd)); !errors.Is(err, storage.ErrNotFound) || rep.BlobsDeleted != 2 {
			t.Fatalf("Run kept the blob pushed after its load (%v, %d blobs deleted): the snapshot is not what Load read", err, rep.BlobsDeleted)
		}
		if pulls(t, drv, pushed) == nil {
			t.Fatal("the late push pulls")
		}
	})

	for _, sd := range sweepDrivers {
		for _, withKeep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/keep=%v", sd.name, withKeep), func(t *testing.T) {
				t.Parallel()
				drv, f, gd := build(t)
				var pushed digest.Digest
				s := load(t, sd.wrap(drv), gc.Options{Hooks: gc.Hooks{BeforeStage: func(st gc.Stage) {
					if st != gc.StageLayerLinks {
						return
					}
					// The daemon's promise: markers first, then its work.
					f.put(promisePath("app", gd), nil)
					f.put(promisePath("", gd), nil)
					pushed = push(f)
				}}})
				p := s.Plan(s.Mark(gc.Roots{}))
				if !slices.Contains(planLines(p), "blob "+gd.String()) {
					t.Fatal("the plan does not delete the unfinished upload")
				}
				var keep func(gc.Deletion) bool
				if withKeep {
					keep = func(d gc.Deletion) bool {
						_, err := drv.Stat(context.Background(), promisePath(d.Repository, d.Digest))
						return err == nil
					}
				}
				if err := s.SweepFiltered(context.Background(), p, keep); err != nil {
					t.Fatal(err)
				}
				err := pulls(t, drv, pushed)
				if withKeep && err != nil {
					t.Errorf("with keep, the push made during the sweep does not pull: %v", err)
				}
				if !withKeep && err == nil {
					t.Error("without keep, the push made during the sweep pulls: the sweep did not delete what it planned")
				}
				rep := s.Report()
				if wantBlobs := map[bool]int{false: 2, true: 1}[withKeep]; rep.BlobsDeleted != wantBlobs {
					t.Errorf("%d blobs deleted, want %d", rep.BlobsDeleted, wantBlobs)
				}
			})
		}
	}
}

// Mark(roots) keeps what roots name, with what they need, and changes
// nothing else: its plan is Mark(Roots{})'s minus exactly that.
func TestMarkRoots(t *testing.T) {
	t.Parallel()
	drv, dir := newFS(t)
	f := newFixture(t, drv, 1)
	f.regctlLinks = true
	f.image("app", "latest", l1, l2)
	u := f.image("app", "", []byte("layer of an image pushed by digest only"))
	sig := f.referrer("app", u)
	child := f.image("app", "", []byte("layer of an index child"))
	idx := f.index("app", "", child)
	g := f.layer("app", []byte("an upload whose manifest never came")).Digest
	h := f.blob([]byte("a blob in no repository"))
	f.image("other", "latest", l2)
	before := newModel(snapshot(t, drv))

	blob := func(d digest.Digest) string { return "blob " + d.String() }
	link := func(d digest.Digest) string { return "layer-link app " + d.String() }
	// image: what an untagged image of app is made of, deleted by -m.
	image := func(d digest.Digest) []string {
		out := []string{"manifest app " + d.String(), blob(d)}
		for _, b := range f.docs[d].blobs {
			out = append(out, link(b), blob(b))
		}
		return out
	}
	withSig := append(image(u), image(sig)...)
	withSig = append(withSig, "referrer-link app "+sig.String())
	index := append(image(child), "manifest app "+idx.String(), blob(idx))
	app := func(d digest.Digest) gc.RepoDigest { return gc.RepoDigest{Repository: "app", Digest: d} }

	for _, tc := range []struct {
		name  string
		m     bool
		roots gc.Roots
		kept  []string
		// pulls are the revisions of app that must pull after the sweep.
		pulls []digest.Digest
	}{
		{name: "revision: an image and its referrer", m: true, roots: gc.Roots{Revisions: []gc.RepoDigest{app(u)}},
			kept: withSig, pulls: []digest.Digest{u, sig}},
		{name: "revision: an index and its child", m: true, roots: gc.Roots{Revisions: []gc.RepoDigest{app(idx)}},
			kept: index, pulls: []digest.Digest{idx, child}},
		{name: "blob: a manifest keeps its revision", m: true, roots: gc.Roots{Blobs: []digest.Digest{u}},
			kept: withSig, pulls: []digest.Digest{u, sig}},
		{name: "blob: an index", m: true, roots: gc.Roots{Blobs: []digest.Digest{idx}},
			kept: index, pulls: []digest.Digest{idx, child}},
		{name: "layer link", m: true, roots: gc.Roots{LayerLinks: []gc.RepoDigest{app(g)}},
			kept: []string{link(g), blob(g)}},
		{name: "layer link, plain", roots: gc.Roots{LayerLinks: []gc.RepoDigest{app(g)}},
			kept: []string{link(g), blob(g)}},
		{name: "blob: no layer link", m: true, roots: gc.Roots{Blobs: []digest.Digest{g}},
			kept: []string{blob(g)}},
		{name: "blob: no layer link, plain", roots: gc.Roots{Blobs: []digest.Digest{g}},
			kept: []string{blob(g)}},
		{name: "blob in no repository", roots: gc.Roots{Blobs: []digest.Digest{h}},
			kept: []string{blob(h)}},
		{name: "a link's blob even in an unknown repository", m: true,
			roots: gc.Roots{Revisions: []gc.RepoDigest{{Repository: "nope", Digest: u}}, LayerLinks: []gc.RepoDigest{{Repository: "nope", Digest: g}}},
			kept:  []string{blob(g)}},
		{name: "several", m: true, roots: gc.Roots{Revisions: []gc.RepoDigest{app(idx)}, LayerLinks: []gc.RepoDigest{app(g)}, Blobs: []digest.Digest{h}},
			kept: append(slices.Clone(index), link(g), blob(g), blob(h)), pulls: []digest.Digest{idx, child}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			copyTree(t, dir, work)
			d := fsDriver(t, work)
			s := load(t, d, gc.Options{RemoveUntagged: tc.m})
			base := planLines(s.Plan(s.Mark(gc.Roots{})))
			for _, k := range tc.kept {
				if !slices.Contains(base, k) {
					t.Fatalf("without roots, the plan keeps %s already: the case proves nothing", k)
				}
			}
			var want []string
			for _, l := range base {
				if !slices.Contains(tc.kept, l) {
					want = append(want, l)
				}
			}
			marks := s.Mark(tc.roots)
			p := s.Plan(marks)
			if got := planLines(p); !slices.Equal(got, want) {
				t.Errorf("with roots, the plan deletes\n  %s\nwant (without roots, but what they keep)\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			for _, k := range tc.kept {
				if kind, rest, _ := strings.Cut(k, " "); kind == gc.KindBlob && !marks.Marked(digest.Digest(rest)) {
					t.Errorf("Marked(%s) = false", rest)
				}
			}
			if again := planLines(s.Plan(s.Mark(gc.Roots{}))); !slices.Equal(again, base) {
				t.Error("marking again without roots plans otherwise: roots leaked into the Snapshot")
			}
			if err := s.SweepFiltered(context.Background(), p, nil); err != nil {
				t.Fatal(err)
			}
			after := newModel(snapshot(t, d))
			for _, r := range tc.pulls {
				before.checkComplete("app", r, after, false, func(format string, args ...any) { t.Errorf(format, args...) })
			}
		})
	}
}
