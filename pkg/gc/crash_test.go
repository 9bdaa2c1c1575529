package gc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"regctl/pkg/gc"
)

// stageOf is the sweep stage a deletion belongs to: Run finishes one
// stage before it starts the next.
var stageOf = map[string]int{
	gc.KindTagIndex: 0, gc.KindReferrerLink: 0, gc.KindManifest: 1, gc.KindLayerLink: 2, gc.KindBlob: 3,
}

// TestCrashAtAnyMoment: a crash (kill -9, a lost node) stops a run at
// any point of its sweep: every stage before that point done, and any
// subset of the current stage's deletions done, in any order (deletions
// of a stage run concurrently, and S3 applies a DeleteObjects call in no
// set order). Every such state keeps every tagged image and kept
// referrer complete, and a second run ends where one run does.
func TestCrashAtAnyMoment(t *testing.T) {
	t.Parallel()
	seeds := 2
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		for _, m := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/m=%v", seed, m), func(t *testing.T) {
				t.Parallel()
				drv, dir := newFS(t)
				f := newFixture(t, drv, uint64(3000+seed))
				f.regctlLinks = true
				f.generate(genOptions{Repos: 4, Ops: 30, Referrers: true, Deletes: true, Docker: seed%2 == 0})
				mdl := newModel(snapshot(t, drv))

				var stages [4][]gc.Deletion
				rep, err := gc.Run(context.Background(), drv, gc.Options{RemoveUntagged: m, DryRun: true,
					OnDelete: func(d gc.Deletion) { stages[stageOf[d.Kind]] = append(stages[stageOf[d.Kind]], d) }})
				if err != nil {
					t.Fatal(err)
				}
				if len(stages[3]) == 0 || (m && len(stages[1]) == 0) {
					t.Fatalf("the fixture leaves nothing to collect in some stage: %+v", rep)
				}
				one := t.TempDir()
				copyTree(t, dir, one)
				run(t, fsDriver(t, one), gc.Options{RemoveUntagged: m})
				want := snapshot(t, fsDriver(t, one))

				rng := rand.New(rand.NewPCG(uint64(seed), 7))
				for stage := range stages {
					if len(stages[stage]) == 0 {
						continue
					}
					for trial := range 2 {
						work := t.TempDir()
						copyTree(t, dir, work)
						d := fsDriver(t, work)
						del := func(x gc.Deletion) {
							if err := d.Delete(context.Background(), x.Path); err != nil {
								t.Fatalf("deleting %s: %v", x.Path, err)
							}
						}
						for _, done := range stages[:stage] {
							for _, x := range done {
								del(x)
							}
						}
						for _, i := range rng.Perm(len(stages[stage])) {
							if rng.IntN(2) == 0 {
								del(stages[stage][i])
							}
						}
						checkTaggedComplete(t, mdl, snapshot(t, d), m)
						run(t, d, gc.Options{RemoveUntagged: m})
						if diff := diffTrees(want, snapshot(t, d)); diff != "" {
							t.Errorf("crashed in stage %d (trial %d), then run again: the tree differs from one run's:\n%s", stage, trial, diff)
						}
					}
				}
			})
		}
	}
}
