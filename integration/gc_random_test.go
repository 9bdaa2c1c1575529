package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"regctl/internal/testtools"
	"regctl/pkg/gc"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// Randomized garbage collection through the HTTP API: a real `regctl
// serve` is filled with go-containerregistry (pushes, overwritten tags,
// multi-arch indexes, layers shared across repositories, signatures and
// SBOMs with a subject, deleted tags and manifests) while a client-side
// model records what each push and delete did. `regctl
// registry-garbage-collect` then runs against the running daemon as a
// dry run, without -m and with -m, and the registry is checked against
// the model: through the API (every tag and every kept referrer pulls
// completely, the referrers API lists exactly the kept referrers, what
// was deleted answers 404 and can be pushed again) and in the storage
// (exactly the expected blobs and manifest revisions remain; no layer
// link is left to a deleted blob; a dry run changes no file).
//
// Each seed is a subtest named after it. REGCTL_GC_SEEDS="7,12" runs
// those seeds instead of the default ones.

// gcHeartbeat is the daemons' and the command's heartbeat: long enough
// for a loaded machine, short enough for a few seconds a seed.
const gcHeartbeat = "REGCTL_CLUSTER_HEARTBEAT=300ms"

// gcSeeds is REGCTL_GC_SEEDS when set, else defaults.
func gcSeeds(t *testing.T, defaults ...uint64) []uint64 {
	s := os.Getenv("REGCTL_GC_SEEDS")
	if s == "" {
		return defaults
	}
	var seeds []uint64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("REGCTL_GC_SEEDS: %v", err)
		}
		seeds = append(seeds, n)
	}
	return seeds
}

func TestGarbageCollectRandomFilesystem(t *testing.T) {
	// Three fixed seeds, and one that changes from run to run.
	seeds := []uint64{1, 2, 3, uint64(time.Now().UnixNano() % 100000)}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range gcSeeds(t, seeds...) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			addr := testtools.FreeAddr(t)
			config := serveConfig(t, addr, "")
			drv, err := storage.NewFilesystem(filepath.Join(filepath.Dir(config), "root"))
			if err != nil {
				t.Fatal(err)
			}
			runGCScenario(t, seed, addr, config, drv)
		})
	}
}

func TestGarbageCollectRandomS3(t *testing.T) {
	g := testtools.NewVersityGW(t)
	for _, seed := range gcSeeds(t, 101) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			n := newS3Node(t, g, g.Bucket(t))
			runGCScenario(t, seed, n.Addr, n.write(t), s3Driver(t, g, n.Bucket))
		})
	}
}

// runGCScenario starts regctl serve on config, fills it from seed, and
// collects garbage twice (without and with -m), checking after each.
func runGCScenario(t *testing.T, seed uint64, addr, config string, drv storage.Driver) {
	cmd := exec.Command(regctlBinary(t), "serve", config)
	cmd.Env = cleanEnv(gcHeartbeat)
	testtools.StartCmd(t, addr, cmd)
	t.Cleanup(closeClientConns)

	s := &gcScenario{t: t, rng: rand.New(rand.NewPCG(seed, 0x9c)), addr: addr, config: config, drv: drv,
		repos: map[string]*modelRepo{}, pushedTo: map[v1.Hash]map[string]bool{}}
	for range 3 {
		s.base = append(s.base, static.NewLayer(s.bytes(200+s.rng.IntN(800)), types.OCILayer))
	}
	for _, m := range []bool{false, true} {
		s.fill(25)
		// The dry runs change nothing, and announce what the real run
		// then does.
		before := s.tree()
		dry := s.gc(m, true)
		if diff := diffSnapshots(before, s.tree()); len(diff) > 0 {
			t.Fatalf("-m=%v: the dry run changed the storage:\n%s", m, strings.Join(diff, "\n"))
		}
		rep := s.gc(m, false)
		if dry.BlobsDeleted != rep.BlobsDeleted || dry.ManifestsDeleted != rep.ManifestsDeleted || dry.BytesFreed != rep.BytesFreed {
			t.Errorf("-m=%v: the dry run announced %d blobs, %d manifests, %d bytes; the run deleted %d, %d, %d",
				m, dry.BlobsDeleted, dry.ManifestsDeleted, dry.BytesFreed, rep.BlobsDeleted, rep.ManifestsDeleted, rep.BytesFreed)
		}
		s.check(m, rep)
		if t.Failed() {
			t.Fatalf("seed %d failed after the run with -m=%v (rerun: REGCTL_GC_SEEDS=%d)", seed, m, seed)
		}
	}
	// What was deleted pushes again (the daemon does not answer
	// "exists" for it) and then pulls completely.
	s.repush()
	if t.Failed() {
		t.Fatalf("seed %d failed re-pushing deleted images (rerun: REGCTL_GC_SEEDS=%d)", seed, seed)
	}
}

type modelManifest struct {
	digest   v1.Hash
	desc     v1.Descriptor
	blobs    []v1.Hash // config and layers
	children []v1.Hash // an index's manifests
	subject  *v1.Hash
	img      v1.Image      // to push it again
	idx      v1.ImageIndex // or this
}

type modelRepo struct {
	tags      map[string]v1.Hash
	manifests map[v1.Hash]*modelManifest // the revisions the repository has
}

type gcScenario struct {
	t            *testing.T
	rng          *rand.Rand
	addr, config string
	drv          storage.Driver
	base         []v1.Layer
	repos        map[string]*modelRepo
	// pushedTo: every blob (manifests included) and the repositories it
	// was pushed to, for the 404 checks.
	pushedTo map[v1.Hash]map[string]bool
	// gone: manifests deleted through the API or by a collection, for
	// repush.
	gone []goneManifest
}

type goneManifest struct {
	repo string
	m    *modelManifest
}

var gcRepoNames = []string{"team/app", "team/app-b", "other/tool"}

func (s *gcScenario) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	return b
}

func (s *gcScenario) repo(name string) *modelRepo {
	r := s.repos[name]
	if r == nil {
		r = &modelRepo{tags: map[string]v1.Hash{}, manifests: map[v1.Hash]*modelManifest{}}
		s.repos[name] = r
	}
	return r
}

func (s *gcScenario) ref(repo, tagOrDigest string) string {
	sep := ":"
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		sep = "@"
	}
	return s.addr + "/" + repo + sep + tagOrDigest
}

func (s *gcScenario) pushed(repo string, hs ...v1.Hash) {
	for _, h := range hs {
		if s.pushedTo[h] == nil {
			s.pushedTo[h] = map[string]bool{}
		}
		s.pushedTo[h][repo] = true
	}
}

// newImage is an image of some shared base layers and one of its own.
func (s *gcScenario) newImage() *modelManifest {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, i := range s.rng.Perm(len(s.base))[:s.rng.IntN(3)] {
		adds = append(adds, mutate.Addendum{Layer: s.base[i]})
	}
	adds = append(adds, mutate.Addendum{Layer: static.NewLayer(s.bytes(100+s.rng.IntN(1500)), types.OCILayer)})
	img, err := mutate.Append(img, adds...)
	if err == nil {
		img, err = mutate.Config(img, v1.Config{Env: []string{fmt.Sprint("N=", s.rng.Uint64())}})
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return s.imageModel(img)
}

func (s *gcScenario) imageModel(img v1.Image) *modelManifest {
	m := &modelManifest{img: img}
	mf, err := img.Manifest()
	if err != nil {
		s.t.Fatal(err)
	}
	m.blobs = append(m.blobs, mf.Config.Digest)
	for _, l := range mf.Layers {
		m.blobs = append(m.blobs, l.Digest)
	}
	if mf.Subject != nil {
		m.subject = &mf.Subject.Digest
	}
	m.digest, m.desc = s.descriptor(img)
	return m
}

type describable interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
}

func (s *gcScenario) descriptor(x describable) (v1.Hash, v1.Descriptor) {
	d, err := x.Digest()
	if err != nil {
		s.t.Fatal(err)
	}
	n, _ := x.Size()
	mt, _ := x.MediaType()
	return d, v1.Descriptor{Digest: d, Size: n, MediaType: mt}
}

// push pushes m to repo, by tag when tag is set, else by digest, and
// records it.
func (s *gcScenario) push(repo, tag string, m *modelManifest) {
	s.t.Helper()
	target := tag
	if target == "" {
		target = m.digest.String()
	}
	ref := mustRef(s.t, s.ref(repo, target))
	var err error
	if m.idx != nil {
		err = remote.WriteIndex(ref, m.idx)
	} else {
		err = remote.Write(ref, m.img)
	}
	if err != nil {
		s.t.Fatalf("push %s: %v", ref, err)
	}
	r := s.repo(repo)
	r.manifests[m.digest] = m
	s.pushed(repo, m.digest)
	s.pushed(repo, m.blobs...)
	if m.idx != nil {
		// WriteIndex pushes the children by digest.
		im, _ := m.idx.IndexManifest()
		for _, c := range im.Manifests {
			img, err := m.idx.Image(c.Digest)
			if err != nil {
				s.t.Fatal(err)
			}
			cm := s.imageModel(img)
			r.manifests[cm.digest] = cm
			s.pushed(repo, cm.digest)
			s.pushed(repo, cm.blobs...)
		}
	}
	if tag != "" {
		r.tags[tag] = m.digest
	}
}

func (s *gcScenario) newIndex() *modelManifest {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		adds = append(adds, mutate.IndexAddendum{Add: s.newImage().img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	m := &modelManifest{idx: idx}
	im, err := idx.IndexManifest()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, c := range im.Manifests {
		m.children = append(m.children, c.Digest)
	}
	m.digest, m.desc = s.descriptor(idx)
	return m
}

// newReferrer is a cosign-style signature or an SBOM of subject.
func (s *gcScenario) newReferrer(subject v1.Descriptor) *modelManifest {
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	cfg, layer := types.MediaType("application/vnd.dev.cosign.artifact.sig.v1+json"), types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")
	if s.rng.IntN(2) == 0 {
		cfg, layer = "application/vnd.example.sbom.config.v1+json", "application/spdx+json"
	}
	art = mutate.ConfigMediaType(art, cfg)
	art, err := mutate.Append(art, mutate.Addendum{Layer: static.NewLayer(s.bytes(64+s.rng.IntN(200)), layer)})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.imageModel(mutate.Subject(art, subject).(v1.Image))
}

// pick returns a random element of a sorted key set, or false.
func pick[K any](rng *rand.Rand, keys []K) (K, bool) {
	var zero K
	if len(keys) == 0 {
		return zero, false
	}
	return keys[rng.IntN(len(keys))], true
}

func sortedHashes(m map[v1.Hash]*modelManifest) []v1.Hash {
	return slices.SortedFunc(maps.Keys(m), func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) })
}

// fill runs n random operations.
func (s *gcScenario) fill(n int) {
	tags := []string{"latest", "v1", "v2", "stable"}
	for range n {
		repo := gcRepoNames[s.rng.IntN(len(gcRepoNames))]
		r := s.repo(repo)
		tag := tags[s.rng.IntN(len(tags))]
		switch op := s.rng.IntN(100); {
		case op < 30: // push or overwrite a tag
			s.push(repo, tag, s.newImage())
		case op < 40:
			s.push(repo, tag, s.newIndex())
		case op < 47: // untagged from the start
			s.push(repo, "", s.newImage())
		case op < 62: // a referrer of any manifest the repository has
			d, ok := pick(s.rng, sortedHashes(r.manifests))
			if !ok {
				continue
			}
			ref := s.newReferrer(r.manifests[d].desc)
			if s.rng.IntN(4) == 0 {
				s.push(repo, "sha256-"+d.Hex[:16]+".sig", ref) // cosign's tag scheme
			} else {
				s.push(repo, "", ref)
			}
		case op < 72: // the same image in another repository
			src := s.repo(gcRepoNames[s.rng.IntN(len(gcRepoNames))])
			d, ok := pick(s.rng, slices.Sorted(maps.Keys(src.tags)))
			if !ok {
				continue
			}
			s.push(repo, tag, src.manifests[src.tags[d]])
		case op < 86: // delete a tag
			t, ok := pick(s.rng, slices.Sorted(maps.Keys(r.tags)))
			if !ok {
				continue
			}
			if err := remote.Delete(mustRef(s.t, s.ref(repo, t))); err != nil {
				s.t.Fatalf("delete tag %s:%s: %v", repo, t, err)
			}
			delete(r.tags, t)
		default: // delete a manifest (not an index's child): its tags go too
			var cands []v1.Hash
			for _, d := range sortedHashes(r.manifests) {
				if !s.isChild(r, d) {
					cands = append(cands, d)
				}
			}
			d, ok := pick(s.rng, cands)
			if !ok {
				continue
			}
			if err := remote.Delete(mustRef(s.t, s.ref(repo, d.String()))); err != nil {
				s.t.Fatalf("delete %s@%s: %v", repo, d, err)
			}
			s.gone = append(s.gone, goneManifest{repo, r.manifests[d]})
			delete(r.manifests, d)
			for t, td := range r.tags {
				if td == d {
					delete(r.tags, t)
				}
			}
		}
	}
}

func (s *gcScenario) isChild(r *modelRepo, d v1.Hash) bool {
	for _, m := range r.manifests {
		if slices.Contains(m.children, d) {
			return true
		}
	}
	return false
}

// keptManifests is what a collection keeps, per repository: every
// revision; or, with -m, what Distribution's -m keeps (the tagged
// manifests, and every revision whose digest it marked anywhere: the
// children of a tagged index, and a manifest tagged in another
// repository) plus regctl's referrers of kept manifests, to a fixed
// point.
func keptManifests(repos map[string]*modelRepo, untagged bool) map[string]map[v1.Hash]bool {
	roots := map[string]map[v1.Hash]bool{}
	for name, r := range repos {
		roots[name] = map[v1.Hash]bool{}
		for d := range r.manifests {
			if !untagged || slices.Contains(slices.Collect(maps.Values(r.tags)), d) {
				roots[name][d] = true
			}
		}
	}
	for {
		marked := map[v1.Hash]bool{}
		var mark func(r *modelRepo, d v1.Hash)
		mark = func(r *modelRepo, d v1.Hash) {
			marked[d] = true
			if m := r.manifests[d]; m != nil {
				for _, c := range m.children {
					mark(r, c)
				}
			}
		}
		for name, r := range repos {
			for d := range roots[name] {
				mark(r, d)
			}
		}
		kept := map[string]map[v1.Hash]bool{}
		for name, r := range repos {
			kept[name] = map[v1.Hash]bool{}
			for d := range r.manifests {
				if marked[d] {
					kept[name][d] = true
				}
			}
		}
		changed := false
		for name, r := range repos {
			for d, m := range r.manifests {
				if m.subject != nil && kept[name][*m.subject] && !roots[name][d] {
					roots[name][d], changed = true, true
				}
			}
		}
		if !changed {
			return kept
		}
	}
}

// gcResult is the JSON output of registry-garbage-collect.
type gcResult struct {
	Report  gc.Report `json:"report"`
	Daemons *int      `json:"daemons_read_only"`
}

// gc runs registry-garbage-collect against the running daemon.
func (s *gcScenario) gc(untagged, dryRun bool) gc.Report {
	s.t.Helper()
	args := []string{"-o", "json", "registry-garbage-collect"}
	if untagged {
		args = append(args, "-m")
	}
	if dryRun {
		args = append(args, "--dry-run")
	}
	stdout, stderr, code := runRegctlSplit(s.t, cleanEnv(gcHeartbeat), append(args, s.config)...)
	if code != 0 {
		s.t.Fatalf("regctl %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	var res gcResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		s.t.Fatalf("output is not JSON (%v):\n%s", err, stdout)
	}
	if !dryRun && (res.Daemons == nil || *res.Daemons != 1) {
		s.t.Errorf("-m=%v: daemons_read_only = %v, want 1", untagged, res.Daemons)
	}
	for _, p := range res.Report.Problems {
		// A repository with no tags folder (never tagged, or every tag
		// deleted): Distribution's -m keeps its manifests but collects
		// their blobs; regctl deletes them as untagged, and says so.
		if r := s.repos[p.Repository]; untagged && p.Kind == gc.ProblemDeviation &&
			strings.HasPrefix(p.Detail, "no tags folder") && r != nil && len(r.tags) == 0 {
			continue
		}
		s.t.Errorf("-m=%v dry=%v: problem reported: %v", untagged, dryRun, p)
	}
	return res.Report
}

// runRegctlSplit runs the regctl binary with stdout and stderr apart.
func runRegctlSplit(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, regctlBinary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("regctl %v: %v\n%s%s", args, err, out.String(), errb.String())
	return "", "", -1
}

// storageView is what the storage holds, read through the driver.
type storageView struct {
	files      map[string]string // path -> size and content hash
	blobs      map[v1.Hash]bool
	revisions  map[string]map[v1.Hash]bool // repository -> manifests
	layerLinks map[string]map[v1.Hash]bool // repository -> linked blobs
}

// tree hashes every file except the daemons' heartbeats and the lease,
// which change on their own.
func (s *gcScenario) tree() map[string]string { return s.view().files }

func (s *gcScenario) view() storageView {
	s.t.Helper()
	ctx := s.t.Context()
	v := storageView{files: map[string]string{}, blobs: map[v1.Hash]bool{},
		revisions: map[string]map[v1.Hash]bool{}, layerLinks: map[string]map[v1.Hash]bool{}}
	reposPrefix := storage.RepositoriesRoot() + "/"
	err := s.drv.Walk(ctx, storage.Root, func(fi storage.FileInfo) error {
		if fi.Path == maintenance.Prefix {
			return storage.ErrSkipDir
		}
		if fi.IsDir {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path, storage.Root+"/"), "/")
		if parts[0] == "blobs" && len(parts) == 5 && parts[4] == "data" {
			// Content-addressed: its path and size say enough.
			v.files[fi.Path] = fmt.Sprint(fi.Size)
			v.blobs[v1.Hash{Algorithm: parts[1], Hex: parts[3]}] = true
			return nil
		}
		b, err := s.drv.GetContent(ctx, fi.Path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		v.files[fi.Path] = fmt.Sprint(len(b), " ", hex.EncodeToString(sum[:8]))
		rel, ok := strings.CutPrefix(fi.Path, reposPrefix)
		if !ok {
			return nil
		}
		for _, kind := range []string{"/_manifests/revisions/", "/_layers/"} {
			repo, rest, ok := strings.Cut(rel, kind)
			if !ok {
				continue
			}
			f := strings.Split(rest, "/")
			if len(f) != 3 || f[2] != "link" {
				continue
			}
			m := v.revisions
			if kind == "/_layers/" {
				m = v.layerLinks
			}
			if m[repo] == nil {
				m[repo] = map[v1.Hash]bool{}
			}
			m[repo][v1.Hash{Algorithm: f[0], Hex: f[1]}] = true
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("walking the storage: %v", err)
	}
	return v
}

// check compares the registry with the model after a collection.
func (s *gcScenario) check(untagged bool, rep gc.Report) {
	t := s.t
	t.Helper()
	v := s.view()
	wantBlobs := map[v1.Hash]bool{}
	deletedManifests, untaggedSeen := 0, 0
	keptAll := keptManifests(s.repos, untagged)
	for _, name := range slices.Sorted(maps.Keys(s.repos)) {
		r := s.repos[name]
		keep := keptAll[name]
		tagged := map[v1.Hash]bool{}
		for _, d := range r.tags {
			tagged[d] = true
		}
		for _, d := range sortedHashes(r.manifests) {
			if !tagged[d] {
				untaggedSeen++
			}
			if !keep[d] {
				// Gone, for the storage and the daemon alike.
				deletedManifests++
				s.gone = append(s.gone, goneManifest{name, r.manifests[d]})
				if code := s.head(name, "manifests", d); code != http.StatusNotFound {
					t.Errorf("%s@%s was collected but HEAD answers %d", name, d, code)
				}
				continue
			}
			m := r.manifests[d]
			wantBlobs[d] = true
			for _, b := range append(slices.Clone(m.blobs), m.children...) {
				wantBlobs[b] = true
			}
		}
		for d := range r.manifests {
			if !keep[d] {
				delete(r.manifests, d)
			}
		}
		if got := hashNames(v.revisions[name]); !slices.Equal(got, hashNames(keep)) {
			t.Errorf("%s: revisions in storage\n%v\nwant\n%v", name, got, hashNames(keep))
		}
		s.checkPulls(name, r)
	}
	if !untagged && untaggedSeen == 0 {
		t.Errorf("the scenario left no untagged manifest: it tests nothing about -m")
	}
	if got, want := hashNames(v.blobs), hashNames(wantBlobs); !slices.Equal(got, want) {
		t.Errorf("blobs in storage:\n%v\nwant (referenced by the kept manifests):\n%v", got, want)
	}
	for repo, links := range v.layerLinks {
		for d := range links {
			if !wantBlobs[d] {
				t.Errorf("%s: a layer link to collected blob %s remains", repo, d)
			}
		}
	}
	if rep.ManifestsDeleted != deletedManifests {
		t.Errorf("report: %d manifests deleted, the model says %d", rep.ManifestsDeleted, deletedManifests)
	}
	// Collected blobs answer 404 in every repository they were pushed to.
	for _, d := range slices.SortedFunc(maps.Keys(s.pushedTo), func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) }) {
		if wantBlobs[d] {
			continue
		}
		for repo := range s.pushedTo[d] {
			if code := s.head(repo, "blobs", d); code != http.StatusNotFound {
				t.Errorf("%s: collected blob %s answers HEAD %d", repo, d, code)
			}
		}
		delete(s.pushedTo, d)
	}
}

func hashNames(m map[v1.Hash]bool) []string {
	var out []string
	for d, ok := range m {
		if ok {
			out = append(out, d.String())
		}
	}
	slices.Sort(out)
	return out
}

func (s *gcScenario) head(repo, kind string, d v1.Hash) int {
	resp, _ := do(s.t, http.MethodHead, s.addr, "/v2/"+repo+"/"+kind+"/"+d.String(), nil, nil)
	return resp.StatusCode
}

// checkPulls pulls every tag of r, and every kept manifest by digest,
// completely, and compares the referrers API with the model.
func (s *gcScenario) checkPulls(repo string, r *modelRepo) {
	t := s.t
	t.Helper()
	got := map[string]bool{}
	tags, err := remote.List(mustRef(t, s.ref(repo, "x")).Context())
	if err != nil && len(r.tags) > 0 {
		t.Errorf("%s: tags list: %v", repo, err)
	}
	for _, tg := range tags {
		got[tg] = true
	}
	if want := slices.Sorted(maps.Keys(r.tags)); !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Errorf("%s: tags %v, want %v", repo, slices.Sorted(maps.Keys(got)), want)
	}
	for tag, d := range r.tags {
		s.pullManifest(repo, tag, r.manifests[d])
	}
	referrers := map[v1.Hash][]string{}
	for _, d := range sortedHashes(r.manifests) {
		// Every kept manifest pulls from its repository, untagged
		// ones too: with -m, one untagged here but tagged in another
		// repository stays here, and must keep its layer links here
		// (Distribution deletes them when it meets this repository
		// first; regctl keeps them).
		m := r.manifests[d]
		s.pullManifest(repo, d.String(), m)
		if m.subject != nil {
			if _, ok := r.manifests[*m.subject]; ok {
				referrers[*m.subject] = append(referrers[*m.subject], d.String())
			}
		}
	}
	for subject, want := range referrers {
		d, err := name.NewDigest(s.ref(repo, subject.String()), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(d)
		var im *v1.IndexManifest
		if err == nil {
			im, err = idx.IndexManifest()
		}
		if err != nil {
			t.Errorf("%s: referrers of %s: %v", repo, subject, err)
			continue
		}
		var listed []string
		for _, m := range im.Manifests {
			listed = append(listed, m.Digest.String())
		}
		slices.Sort(listed)
		if !slices.Equal(listed, want) {
			t.Errorf("%s: referrers of %s are %v, want %v", repo, subject, listed, want)
		}
	}
}

// pullManifest pulls repo:ref (a tag or digest) and everything below
// it, and checks it is m.
func (s *gcScenario) pullManifest(repo, ref string, m *modelManifest) {
	t := s.t
	t.Helper()
	desc, err := remote.Get(mustRef(t, s.ref(repo, ref)))
	if err != nil {
		t.Errorf("pull %s:%s: %v", repo, ref, err)
		return
	}
	if desc.Digest != m.digest {
		t.Errorf("%s:%s is %s, want %s", repo, ref, desc.Digest, m.digest)
		return
	}
	if m.idx == nil {
		s.pullImage(repo, m.digest)
		return
	}
	for _, c := range m.children {
		s.pullImage(repo, c)
	}
}

// pullImage pulls an image by digest: manifest, config and every layer.
func (s *gcScenario) pullImage(repo string, d v1.Hash) {
	t := s.t
	t.Helper()
	pullComplete(t, s.ref(repo, d.String()))
}

// repush pushes every deleted manifest again, by digest, and pulls it:
// a push must not skip a blob the daemon wrongly says it has.
func (s *gcScenario) repush() {
	if len(s.gone) == 0 {
		s.t.Errorf("no manifest was collected: the scenario tests nothing")
	}
	for _, g := range s.gone {
		s.push(g.repo, "", g.m)
		s.pullManifest(g.repo, g.m.digest.String(), g.m)
	}
}
