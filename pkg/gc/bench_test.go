package gc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// buildLarge writes a registry shaped like DESIGN.md's measurement
// (repos repositories x 10 tags x 4 pushes, shared base layers, some
// multi-arch indexes and signatures), about 600 files a repository.
func buildLarge(t testing.TB, drv storage.Driver, repos, workers int) {
	base := make([][]byte, 20)
	for i := range base {
		base[i] = fmt.Appendf(nil, "base layer %d %s", i, make([]byte, 64))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for r := range repos {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f := newFixture(t, drv, uint64(r))
			f.regctlLinks = true
			repo := fmt.Sprintf("group%d/project%d", r%20, r)
			for tag := range 10 {
				for push := range 4 {
					name := "v" + strconv.Itoa(tag)
					own := func(n int) []byte { return fmt.Appendf(nil, "%s %d %d %d", repo, tag, push, n) }
					var d digest.Digest
					if tag%5 == 4 {
						c1 := f.image(repo, "", base[tag%20], own(1))
						c2 := f.image(repo, "", base[(tag+1)%20], own(2))
						d = f.index(repo, name, c1, c2)
					} else {
						d = f.image(repo, name, base[tag%20], base[(tag+7)%20], own(1), own(2))
					}
					if tag%3 == 0 {
						f.referrer(repo, d)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestBenchLarge times Run against Distribution's garbage-collect on the
// same data. It is skipped unless REGCTL_GC_BENCH names a folder, where
// the registry is built once and kept (REGCTL_GC_BENCH_REPOS repositories,
// 200 by default).
func TestBenchLarge(t *testing.T) {
	dir := os.Getenv("REGCTL_GC_BENCH")
	if dir == "" {
		t.Skip("REGCTL_GC_BENCH not set")
	}
	repos := 200
	if n, err := strconv.Atoi(os.Getenv("REGCTL_GC_BENCH_REPOS")); err == nil {
		repos = n
	}
	root := filepath.Join(dir, fmt.Sprintf("fs-%d", repos))
	if _, err := os.Stat(root); err != nil {
		start := time.Now()
		tmp := root + ".tmp"
		os.RemoveAll(tmp)
		buildLarge(t, &fastFS{Driver: fsDriver(t, tmp), root: tmp}, repos, 8)
		if err := os.Rename(tmp, root); err != nil {
			t.Fatal(err)
		}
		t.Logf("built %s in %v", root, time.Since(start))
	}
	files := 0
	filepath.WalkDir(root, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	t.Logf("%d files", files)
	bin := testtools.Tool(t, testtools.DistributionTool)
	for _, m := range []bool{true, false} {
		// Alternate, three rounds each, and keep each one's best: the
		// test machines are shared and noisy.
		var dist, ours, distCPU, oursCPU time.Duration
		var rep *gc.Report
		var out string
		for round := range 3 {
			args := []string{"garbage-collect", "--dry-run"}
			if m {
				args = append(args, "-m")
			}
			cfg := filepath.Join(t.TempDir(), "config.yml")
			os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %q\n", root), 0o600)
			start := time.Now()
			o, cpu, err := timedCommand(bin, append(args, cfg)...)
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			start = time.Now()
			before := selfCPU()
			r, err := gc.Run(context.Background(), fsDriver(t, root), gc.Options{RemoveUntagged: m, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			o2, c2 := time.Since(start), selfCPU()-before
			if round == 0 || d < dist {
				dist, distCPU, out = d, cpu, o
			}
			if round == 0 || o2 < ours {
				ours, oursCPU, rep = o2, c2, r
			}
		}
		t.Logf("filesystem dry run -m=%v: Distribution %v (CPU %v), regctl %v (CPU %v): %.1fx faster, %.1fx less CPU; %d blobs, %d manifests to delete (Distribution: %d lines)",
			m, dist.Round(time.Millisecond), distCPU.Round(time.Millisecond), ours.Round(time.Millisecond), oursCPU.Round(time.Millisecond),
			dist.Seconds()/ours.Seconds(), distCPU.Seconds()/oursCPU.Seconds(),
			rep.BlobsDeleted, rep.ManifestsDeleted, len(distributionDeletions(out)))
	}
}

// timedCommand is testtoolsCommand with the child's CPU time.
func timedCommand(bin string, args ...string) (string, time.Duration, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), 0, err
	}
	return string(out), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBenchS3 is TestBenchLarge on versitygw, with a fresh bucket
// (REGCTL_GC_BENCH_S3 set; REGCTL_GC_BENCH_REPOS repositories, 50 by
// default: Distribution needs minutes on S3).
func TestBenchS3(t *testing.T) {
	if os.Getenv("REGCTL_GC_BENCH_S3") == "" {
		t.Skip("REGCTL_GC_BENCH_S3 not set")
	}
	repos := 50
	if n, err := strconv.Atoi(os.Getenv("REGCTL_GC_BENCH_REPOS")); err == nil {
		repos = n
	}
	bin := testtools.Tool(t, testtools.DistributionTool)
	var (
		g      *testtools.VersityGW
		bucket string
	)
	// "endpoint access secret bucket" reuses a running gateway's
	// bucket, built on first use.
	if f := strings.Fields(os.Getenv("REGCTL_GC_BENCH_S3")); len(f) == 4 {
		g = &testtools.VersityGW{Endpoint: f[0], AccessKey: f[1], SecretKey: f[2], Region: testtools.VersityGWRegion}
		bucket = f[3]
	} else {
		g = testtools.NewVersityGW(t)
		bucket = g.Bucket(t)
	}
	drv := newS3(t, g, bucket)
	if _, err := drv.Stat(context.Background(), "/built"); err != nil {
		start := time.Now()
		buildLarge(t, drv, repos, 32)
		if err := drv.PutContent(context.Background(), "/built", nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("built %d repositories in %v", repos, time.Since(start))
	}
	cfg := filepath.Join(t.TempDir(), "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  s3:\n    accesskey: %q\n    secretkey: %q\n    region: %q\n    regionendpoint: %q\n    bucket: %q\n    forcepathstyle: true\n    secure: false\n",
		g.AccessKey, g.SecretKey, g.Region, g.Endpoint, bucket)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, m := range []bool{true, false} {
		args := []string{"garbage-collect", "--dry-run", "-q", cfg}
		if m {
			args = append(args, "-m")
		}
		start := time.Now()
		if out, err := testtoolsCommand(bin, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		dist := time.Since(start)
		start = time.Now()
		rep, err := gc.Run(context.Background(), drv, gc.Options{RemoveUntagged: m, DryRun: true, Progress: phaseTimer(t)})
		if err != nil {
			t.Fatal(err)
		}
		plain := time.Since(start)
		start = time.Now()
		rep, err = gc.Run(context.Background(), &s3Lister{S3: drv}, gc.Options{RemoveUntagged: m, DryRun: true, Progress: phaseTimer(t)})
		if err != nil {
			t.Fatal(err)
		}
		ours := time.Since(start)
		t.Logf("S3 dry run -m=%v: Distribution %v, regctl %v (%.1fx), with ListFiles %v (%.1fx); %d blobs, %d manifests to delete",
			m, dist.Round(time.Millisecond), plain.Round(time.Millisecond), dist.Seconds()/plain.Seconds(),
			ours.Round(time.Millisecond), dist.Seconds()/ours.Seconds(), rep.BlobsDeleted, rep.ManifestsDeleted)
	}
}

// phaseTimer logs how long each phase took.
func phaseTimer(t testing.TB) func(gc.Phase, int, int) {
	var (
		cur   gc.Phase
		since = time.Now()
		total int
	)
	return func(p gc.Phase, done, n int) {
		if p != cur {
			if cur != "" {
				t.Logf("  %s: %d in %v", cur, total, time.Since(since).Round(time.Millisecond))
			}
			cur, since = p, time.Now()
		}
		total = n
	}
}
