package gc_test

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestBuildLargeRegistry only writes buildLarge's registry (DESIGN.md's
// shape) into the folder $REGCTL_BUILD_LARGE names, with
// $REGCTL_GC_BENCH_REPOS repositories (200 by default), for benchmarks of
// other commands (bench/cleanup.sh). Skipped unless the folder is named.
func TestBuildLargeRegistry(t *testing.T) {
	dir := os.Getenv("REGCTL_BUILD_LARGE")
	if dir == "" {
		t.Skip("REGCTL_BUILD_LARGE not set")
	}
	repos := 200
	if n, err := strconv.Atoi(os.Getenv("REGCTL_GC_BENCH_REPOS")); err == nil {
		repos = n
	}
	start := time.Now()
	buildLarge(t, &fastFS{Driver: fsDriver(t, dir), root: dir}, repos, 8)
	t.Logf("built %d repositories in %s in %v", repos, dir, time.Since(start))
}
