package gc_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"regctl/pkg/gc"
)

// BenchmarkRunFilesystem times Run on the filesystem over buildLarge's
// registry with 25 repositories (about 15,000 files): dry runs with and
// without -m, and -m deleting (each round on a fresh copy, made with the
// timer stopped).
func BenchmarkRunFilesystem(b *testing.B) {
	root := filepath.Join(b.TempDir(), "root")
	buildLarge(b, &fastFS{Driver: fsDriver(b, root), root: root}, 25, 8)
	for _, bc := range []struct {
		name string
		opts gc.Options
	}{
		{"dry-run", gc.Options{DryRun: true}},
		{"dry-run-m", gc.Options{DryRun: true, RemoveUntagged: true}},
		{"m", gc.Options{RemoveUntagged: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				dir := root
				if !bc.opts.DryRun {
					b.StopTimer()
					dir = filepath.Join(b.TempDir(), "copy")
					if out, err := exec.Command("cp", "-a", root, dir).CombinedOutput(); err != nil {
						b.Fatalf("%v: %s", err, out)
					}
					b.StartTimer()
				}
				if _, err := gc.Run(context.Background(), fsDriver(b, dir), bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
