package gc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// randomOptions varies the registries by seed: every fourth one has
// dangling index children (Distribution's marking then misses
// references, and Run keeps them), every second one regctl's referrer
// links.
func randomOptions(seed int) genOptions {
	return genOptions{Repos: 5 + seed%6, Ops: 30 + 5*(seed%8), Referrers: true, Deletes: true,
		Dangling: seed%4 == 3, Docker: seed%2 == 0}
}

func TestRandomRegistries(t *testing.T) {
	t.Parallel()
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			drv, dir := newFS(t)
			f := newFixture(t, drv, uint64(1000+seed))
			f.regctlLinks = seed%2 == 1
			f.generate(randomOptions(seed))
			f.put(storage.UploadDataPath("a", "upload-1"), []byte("half a layer"))
			for _, m := range []bool{false, true} {
				cp := t.TempDir()
				copyTree(t, dir, cp)
				d := fsDriver(t, cp)
				before := snapshot(t, d)
				_, dry := run(t, d, gc.Options{RemoveUntagged: m, DryRun: true, Workers: 1 + seed%4})
				if diff := diffTrees(before, snapshot(t, d)); diff != "" {
					t.Fatalf("-m=%v: dry run changed the tree:\n%s", m, diff)
				}
				rep, got := run(t, d, gc.Options{RemoveUntagged: m, Workers: 1 + seed%4})
				if !slices.Equal(dry, got) {
					t.Errorf("-m=%v: dry run announced %d deletions, run made %d", m, len(dry), len(got))
				}
				checkCounts(t, rep, got)
				for _, p := range rep.Problems {
					if p.Kind != gc.ProblemKeptForSafety || !randomOptions(seed).Dangling {
						t.Errorf("-m=%v: unexpected problem: %v", m, p)
					}
				}
				after := snapshot(t, d)
				checkAfter(t, newModel(before), after, m)
				if !m {
					for _, l := range got {
						if k := strings.Fields(l)[0]; k == gc.KindManifest || k == gc.KindTagIndex || k == gc.KindReferrerLink {
							t.Errorf("without -m: deleted %s", l)
						}
					}
				}
				if _, again := run(t, d, gc.Options{RemoveUntagged: m}); len(again) > 0 {
					t.Errorf("-m=%v: a second run deleted %v", m, again)
				}

				// Walked rather than scanned by the layout, and swept
				// in batches: the same.
				cp = t.TempDir()
				copyTree(t, dir, cp)
				bd := &batchFS{Driver: fsDriver(t, cp)}
				if _, walked := run(t, bd, gc.Options{RemoveUntagged: m}); !slices.Equal(walked, got) {
					t.Errorf("-m=%v: walking, deleted %d, not the %d of the layout scan", m, len(walked), len(got))
				}
				if diff := diffTrees(after, snapshot(t, bd)); diff != "" {
					t.Errorf("-m=%v: walking, the tree differs:\n%s", m, diff)
				}
			}
		})
	}
}

// batchFS gives the filesystem driver a DeleteMany, so the batched
// sweep runs on it too. Its other name makes Run walk it as it walks S3
// (the layout scan is for "filesystem" only), so that scan runs on it
// too.
type batchFS struct {
	storage.Driver
	calls atomic.Int64
	max   atomic.Int64
}

func (b *batchFS) Name() string { return "filesystem-batched" }

func (b *batchFS) DeleteMany(ctx context.Context, paths []string) error {
	b.calls.Add(1)
	for n := int64(len(paths)); ; {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	var errs []error
	for _, p := range paths {
		if err := b.Delete(ctx, p); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TestInterrupted stops runs after k deletions: every tagged image and
// kept referrer stays complete, and a second run ends where an
// uninterrupted one does.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	seeds := 2
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/batched=%v", seed, batched), func(t *testing.T) {
				t.Parallel()
				drv, dir := newFS(t)
				f := newFixture(t, drv, uint64(2000+seed))
				f.regctlLinks = true
				f.generate(genOptions{Repos: 6, Ops: 50, Referrers: true, Deletes: true, Docker: true})
				before := snapshot(t, drv)
				mdl := newModel(before)

				ref := t.TempDir()
				copyTree(t, dir, ref)
				_, all := run(t, fsDriver(t, ref), gc.Options{RemoveUntagged: true})
				want := snapshot(t, fsDriver(t, ref))
				if len(all) < 4 {
					t.Skipf("only %d deletions", len(all))
				}
				for _, k := range slices.Compact([]int{1, len(all) / 3, len(all) - 1}) {
					work := t.TempDir()
					copyTree(t, dir, work)
					var d storage.Driver = fsDriver(t, work)
					if batched {
						d = &batchFS{Driver: d}
					}
					ctx, cancel := context.WithCancel(context.Background())
					var mu sync.Mutex
					n := 0
					_, err := gc.Run(ctx, d, gc.Options{RemoveUntagged: true, Workers: 3, OnDelete: func(gc.Deletion) {
						mu.Lock()
						defer mu.Unlock()
						if n++; n == k {
							cancel()
						}
					}})
					cancel()
					// Deletions in flight when it is cancelled may
					// complete the run.
					if err != nil && !errors.Is(err, context.Canceled) {
						t.Fatalf("k=%d: Run = %v, want context.Canceled", k, err)
					}
					checkTaggedComplete(t, mdl, snapshot(t, d), true)
					if _, err := gc.Run(context.Background(), d, gc.Options{RemoveUntagged: true}); err != nil {
						t.Fatal(err)
					}
					if diff := diffTrees(want, snapshot(t, d)); diff != "" {
						t.Errorf("k=%d: interrupted then resumed, the tree differs from one run's:\n%s", k, diff)
					}
					if b, ok := d.(*batchFS); ok && b.calls.Load() == 0 {
						t.Error("DeleteMany never called")
					}
				}
			})
		}
	}
}
