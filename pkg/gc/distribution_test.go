package gc_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// distributionGC runs CNCF Distribution v3.1.2's `registry
// garbage-collect` on the filesystem root dir and returns its output.
func distributionGC(t *testing.T, bin, dir string, m, dry bool) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", dir)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"garbage-collect"}
	if m {
		args = append(args, "-m")
	}
	if dry {
		args = append(args, "--dry-run")
	}
	out, err := testtoolsCommand(bin, append(args, cfg)...)
	if err != nil {
		t.Fatalf("registry %v: %v\n%s", args, err, tail(out))
	}
	return out
}

// testtoolsCommand runs the registry binary without REGISTRY_*
// variables (Distribution reads them as config overrides) and returns
// its standard output, then its standard error.
func testtoolsCommand(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String() + errb.String(), err
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

var (
	distBlobLine     = regexp.MustCompile(`(?m)^blob eligible for deletion: (\S+)$`)
	distManifestLine = regexp.MustCompile(`(?m)^manifest eligible for deletion: \{(\S+) (\S+) \[`)
	distLayerLine    = regexp.MustCompile(`(?m)^(\S+): layer link eligible for deletion: (\S+)$`)
)

// distributionDeletions reads a dry run's announcements as deletion
// lines (manifests, layer links and blobs: it does not list tag index
// entries).
func distributionDeletions(out string) []string {
	var got []string
	for _, m := range distBlobLine.FindAllStringSubmatch(out, -1) {
		got = append(got, gc.KindBlob+" "+m[1])
	}
	for _, m := range distManifestLine.FindAllStringSubmatch(out, -1) {
		got = append(got, gc.KindManifest+" "+m[1]+" "+m[2])
	}
	for _, m := range distLayerLine.FindAllStringSubmatch(out, -1) {
		got = append(got, gc.KindLayerLink+" "+m[1]+" "+m[2])
	}
	slices.Sort(got)
	return got
}

// comparable keeps the kinds of deletion Distribution announces.
func comparable(lines []string) []string {
	var out []string
	for _, l := range lines {
		if k := strings.Fields(l)[0]; k == gc.KindBlob || k == gc.KindManifest || k == gc.KindLayerLink {
			out = append(out, l)
		}
	}
	return out
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fsDriver(t testing.TB, dir string) storage.Driver {
	t.Helper()
	d, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// compareWithDistribution collects copies of the root at dir with both
// programs, dry runs first, and compares what they announce and what
// they leave. adjust, when set, prepares Distribution's copy, and drop
// removes paths from both trees before comparing.
func compareWithDistribution(t *testing.T, bin, dir string, m bool, adjust func(distDir string), drop func(p string) bool) {
	t.Helper()
	ours, theirs := t.TempDir(), t.TempDir()
	copyTree(t, dir, ours)
	copyTree(t, dir, theirs)
	if adjust != nil {
		adjust(theirs)
	}
	oursDrv, theirsDrv := fsDriver(t, ours), fsDriver(t, theirs)

	before := snapshot(t, oursDrv)
	_, dry := run(t, oursDrv, gc.Options{RemoveUntagged: m, DryRun: true})
	distDry := distributionDeletions(distributionGC(t, bin, theirs, m, true))

	rep, lines := run(t, oursDrv, gc.Options{RemoveUntagged: m})
	t.Logf("-m=%v: %d deletions, %d of them layer links", m, len(lines), rep.LayerLinksDeleted)
	for _, p := range rep.Problems {
		t.Errorf("unexpected problem on a well-formed registry: %v", p)
	}
	distributionGC(t, bin, theirs, m, false)
	got, want := snapshot(t, oursDrv), snapshot(t, theirsDrv)
	for _, tree := range []map[string]string{got, want} {
		for p := range tree {
			if strings.Contains(p, "/_regctl/") || (drop != nil && drop(p)) {
				delete(tree, p)
			}
		}
	}
	kept, extra := checkAgainstDistribution(t, before, want, got)
	if rep.LayerLinksKept != len(kept) {
		t.Errorf("-m=%v: LayerLinksKept = %d, but %d layer links stayed that Distribution deleted", m, rep.LayerLinksKept, len(kept))
	}
	// The dry runs' announcements differ by the same links.
	var keptLines, extraLines []string
	for _, p := range kept {
		keptLines = append(keptLines, layerLinkLine(p, got[p]))
	}
	for _, p := range extra {
		extraLines = append(extraLines, layerLinkLine(p, before[p]))
	}
	wantDry := slices.Concat(slices.DeleteFunc(slices.Clone(distDry), func(l string) bool { return slices.Contains(keptLines, l) }), extraLines)
	slices.Sort(wantDry)
	if !slices.Equal(comparable(dry), wantDry) {
		t.Errorf("-m=%v dry run: regctl announces\n  %s\nDistribution's announcements, less the links kept, plus orphan links, are\n  %s", m,
			strings.Join(comparable(dry), "\n  "), strings.Join(wantDry, "\n  "))
	}
}

// layerLinkLine is the deletion line of the layer link at path p, whose
// content is c.
func layerLinkLine(p, c string) string {
	rel := strings.TrimPrefix(p, storage.RepositoriesRoot()+"/")
	return gc.KindLayerLink + " " + rel[:strings.Index(rel, "/_layers/")] + " " + c
}

// checkAgainstDistribution compares regctl's tree (got) with
// Distribution's (want) after both collected the registry before, and
// fails unless they differ only as documented:
//
//   - regctl deletes a subset of what Distribution deletes; each path
//     it keeps beyond that is a layer link of a repository where a
//     manifest regctl keeps references its digest (itself, or through an
//     index child of that repository): the link a pull from there needs.
//     Distribution deletes it when it judges the repository before
//     another one marks the digest (with -m, a manifest untagged here
//     but tagged elsewhere stays here without its links);
//   - regctl deletes beyond that only layer links of orphan repositories
//     (no _manifests: every manifest deleted through the API), which
//     Distribution never lists, and only those whose blob is gone after
//     the run.
//
// It also checks that every revision left in got pulls completely. It
// returns the paths of the links kept and of the orphan links deleted.
func checkAgainstDistribution(t *testing.T, before, want, got map[string]string) (kept, extra []string) {
	t.Helper()
	a := newModel(got)
	b := newModel(before)
	needs := map[string]map[digest.Digest]digest.Digest{} // repo -> digest -> a kept manifest that needs it
	for _, r := range a.repos {
		needs[r] = map[digest.Digest]digest.Digest{}
		for d := range a.revs[r] {
			set := map[digest.Digest]bool{}
			a.closure(r, d, set, map[digest.Digest]bool{})
			for x := range set {
				needs[r][x] = d
			}
		}
	}
	layerLink := func(p string) (string, bool) {
		rel, ok := strings.CutPrefix(p, storage.RepositoriesRoot()+"/")
		i := strings.Index(rel, "/_layers/")
		if !ok || i <= 0 || !strings.HasSuffix(p, "/link") {
			return "", false
		}
		return rel[:i], true
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[p]; ok {
			if w != got[p] {
				t.Errorf("changed by one of the two: %s", p)
			}
			continue
		}
		r, ok := layerLink(p)
		by, needed := needs[r][digest.Digest(got[p])]
		if !ok || !needed {
			t.Errorf("regctl keeps %s, which Distribution deletes and no manifest kept in that repository needs", p)
			continue
		}
		t.Logf("kept, as %s@%s needs it there: %s", r, by, p)
		kept = append(kept, p)
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[p]; ok {
			continue
		}
		r, ok := layerLink(p)
		if !ok || slices.Contains(b.repos, r) || a.blobs[digest.Digest(want[p])] {
			t.Errorf("regctl deletes %s, which Distribution keeps", p)
			continue
		}
		extra = append(extra, p)
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, r := range a.repos {
		for d := range a.revs[r] {
			b.checkComplete(r, d, a, false, fail)
		}
	}
	if len(errs) > 0 {
		t.Errorf("kept manifests that do not pull from their repository:\n  %s", strings.Join(errs[:min(len(errs), 30)], "\n  "))
	}
	return kept, extra
}

// TestSameAsDistributionScenarios compares the well-formed scenarios.
func TestSameAsDistributionScenarios(t *testing.T) {
	t.Parallel()
	bin := testtools.Tool(t, testtools.DistributionTool)
	for _, sc := range scenarios {
		if sc.malformed || sc.differs {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			drv, dir := newFS(t)
			sc.build(newFixture(t, drv, 1))
			compareWithDistribution(t, bin, dir, sc.m, nil, nil)
		})
	}
}

// TestSameAsDistributionRandom compares random registries (without
// referrers, where the two differ on purpose).
func TestSameAsDistributionRandom(t *testing.T) {
	t.Parallel()
	bin := testtools.Tool(t, testtools.DistributionTool)
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			drv, dir := newFS(t)
			f := newFixture(t, drv, uint64(seed))
			f.generate(genOptions{Repos: 10, Ops: 40 + seed*10, Deletes: true, Docker: true})
			for _, m := range []bool{false, true} {
				compareWithDistribution(t, bin, dir, m, nil, nil)
			}
		})
	}
}

// TestSameAsDistributionPlusReferrers checks the deliberate difference:
// with -m, regctl's result is Distribution's on the same registry where
// every referrer regctl keeps is tagged.
func TestSameAsDistributionPlusReferrers(t *testing.T) {
	t.Parallel()
	bin := testtools.Tool(t, testtools.DistributionTool)
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			drv, dir := newFS(t)
			f := newFixture(t, drv, uint64(100+seed))
			f.regctlLinks = true
			f.generate(genOptions{Repos: 8, Ops: 60, Referrers: true, Deletes: true, Docker: true})
			mdl := newModel(snapshot(t, drv))
			kept, _ := mdl.expect(true)
			keepTags := 0
			adjust := func(distDir string) {
				dd := fsDriver(t, distDir)
				df := newFixture(t, dd, 0)
				for _, r := range mdl.repos {
					for d := range kept[r] {
						if mdl.parsed[d].subject != "" && !mdl.tagged[r][d] {
							df.tag(r, fmt.Sprintf("gckeep%d", keepTags), d)
							keepTags++
						}
					}
				}
			}
			drop := func(p string) bool { return regexp.MustCompile(`/_manifests/tags/gckeep\d+/`).MatchString(p) }
			compareWithDistribution(t, bin, dir, true, adjust, drop)
			if keepTags == 0 {
				t.Log("no referrer kept in this registry")
			}
			// And regctl's own deletions of referrer links match the
			// model (checked on a fresh copy).
			cp := t.TempDir()
			copyTree(t, dir, cp)
			cd := fsDriver(t, cp)
			before := snapshot(t, cd)
			rep, _ := run(t, cd, gc.Options{RemoveUntagged: true})
			checkAfter(t, newModel(before), snapshot(t, cd), true)
			if rep.ReferrersKept == 0 && keepTags > 0 {
				t.Errorf("ReferrersKept = 0, but %d referrers were kept", keepTags)
			}
		})
	}
}
