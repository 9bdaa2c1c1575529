package registryd

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

func TestFallbackTag(t *testing.T) {
	// The spec's table ("Referrers Tag Schema").
	for _, c := range []struct{ digest, tag string }{
		{"sha256:" + repeat("a", 64), "sha256-" + repeat("a", 64)},
		{"sha512:" + repeat("a", 128), "sha512-" + repeat("a", 64)},
		{"test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation",
			"test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"},
	} {
		if got := fallbackTag(digest.Digest(c.digest)); got != c.tag {
			t.Errorf("fallbackTag(%s) = %s, want %s", c.digest, got, c.tag)
		}
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, n*len(s))
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

// putRevision stores a manifest as CNCF Distribution does: data and
// revision link, and nothing in regctl's referrers index.
func (e *mfEnv) putRevision(repo string, body []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(body)
	ctx := context.Background()
	if err := e.fs.PutContent(ctx, storage.BlobDataPath(d), body); err != nil {
		e.t.Fatal(err)
	}
	if err := e.fs.PutContent(ctx, storage.ManifestRevisionLinkPath(repo, d), []byte(d)); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// fallbackIndexOf builds the index a client of the referrers tag schema
// pushes: one descriptor per referrer, as the client saw it.
func fallbackIndexOf(t *testing.T, refs ...[]byte) []byte {
	t.Helper()
	var descs []ocispec.Descriptor
	for _, b := range refs {
		var m manifestDoc
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, ocispec.Descriptor{MediaType: m.mediaType(), Digest: digest.FromBytes(b), Size: int64(len(b)), ArtifactType: m.artifactType(), Annotations: m.Annotations})
	}
	return mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs})
}

func referrerDigests(ix ocispec.Index) []digest.Digest {
	var ds []digest.Digest
	for _, m := range ix.Manifests {
		ds = append(ds, m.Digest)
	}
	return ds
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}

// subjectOf pushes an image as repo:tag and returns its descriptor.
func (e *mfEnv) subjectOf(repo, tag string) *ocispec.Descriptor {
	e.t.Helper()
	body := e.image(repo, "subject "+tag, nil)
	d := e.mustPush(repo, tag, ocispec.MediaTypeImageManifest, body)
	return &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(body))}
}

func (e *mfEnv) referrer(repo, seed, artifactType string, subject *ocispec.Descriptor) []byte {
	e.t.Helper()
	return e.image(repo, seed, func(m *ocispec.Manifest) {
		m.ArtifactType = artifactType
		m.Subject = subject
		m.Annotations = map[string]string{"seed": seed}
	})
}

// TestReferrersFromFallbackTag serves a root where CNCF Distribution's
// clients kept the referrers in the tag schema's index: the referrers API
// lists them, with filtering, alongside referrers pushed through regctl,
// and without the ones deleted since.
func TestReferrersFromFallbackTag(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "sig/app"
	subject := e.subjectOf(repo, "v1")

	// Written through Distribution: two referrers and the fallback index.
	sig := e.referrer(repo, "sig", sigType, subject)
	sbom := e.referrer(repo, "sbom", sbomType, subject)
	sigD, sbomD := e.putRevision(repo, sig), e.putRevision(repo, sbom)
	// A descriptor whose manifest has another subject, and one whose
	// manifest was never pushed: neither is a referrer of subject.
	other := e.referrer(repo, "other", sigType, &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x"), Size: 1})
	e.putRevision(repo, other)
	missing := e.referrer(repo, "missing", sigType, subject)
	fb := fallbackIndexOf(t, sig, sbom, other, missing)
	e.putRevision(repo, fb)
	if err := e.fs.PutContent(context.Background(), storage.TagCurrentLinkPath(repo, fallbackTag(subject.Digest)), []byte(digest.FromBytes(fb))); err != nil {
		t.Fatal(err)
	}

	list := "/v2/" + repo + "/referrers/" + subject.Digest.String()
	ix, r := getReferrersList(t, e, list)
	if got, want := referrerDigests(ix), sortedDigests(sigD, sbomD); !slices.Equal(got, want) {
		t.Fatalf("referrers %v, want %v: %s", got, want, r.body)
	}
	for _, m := range ix.Manifests {
		if m.Digest == sbomD && (m.ArtifactType != sbomType || m.Annotations["seed"] != "sbom" || m.Size != int64(len(sbom))) {
			t.Errorf("sbom descriptor %+v", m)
		}
	}
	ix, r = getReferrersList(t, e, list+"?artifactType="+sbomType)
	if got := referrerDigests(ix); !slices.Equal(got, []digest.Digest{sbomD}) || r.hdr.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered: %v %s", got, r.body)
	}

	// A referrer pushed through regctl joins them.
	att := e.referrer(repo, "attestation", sbomType, subject)
	attD := e.mustPush(repo, digest.FromBytes(att).String(), ocispec.MediaTypeImageManifest, att)
	ix, r = getReferrersList(t, e, list)
	if got, want := referrerDigests(ix), sortedDigests(sigD, sbomD, attD); !slices.Equal(got, want) {
		t.Errorf("after a push through regctl: %v, want %v", got, want)
	}

	// Deleting a fallback-listed referrer through regctl drops it, though
	// the fallback index still names it.
	if r := e.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+sigD.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	ix, _ = getReferrersList(t, e, list)
	if got, want := referrerDigests(ix), sortedDigests(sbomD, attD); !slices.Equal(got, want) {
		t.Errorf("after deleting a fallback-listed referrer: %v, want %v", got, want)
	}
	if !e.exists(storage.TagCurrentLinkPath(repo, fallbackTag(subject.Digest))) {
		t.Errorf("without fallbacktags, regctl changed the client's fallback tag")
	}
}

// TestReferrersForeignFallbackTag: a tag with the schema's name that is
// not an image index is no referrers list, and never rewritten.
func TestReferrersForeignFallbackTag(t *testing.T) {
	e := newMfEnv(t, Options{DeleteEnabled: true, ReferrersFallbackTags: true})
	repo := "odd/app"
	subject := e.subjectOf(repo, "v1")
	image := e.image(repo, "a user's image", nil)
	imageD := e.mustPush(repo, fallbackTag(subject.Digest), ocispec.MediaTypeImageManifest, image)

	ref := e.referrer(repo, "sig", sigType, subject)
	refD := e.mustPush(repo, digest.FromBytes(ref).String(), ocispec.MediaTypeImageManifest, ref)
	ix, _ := getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.Digest.String())
	if got := referrerDigests(ix); !slices.Equal(got, []digest.Digest{refD}) {
		t.Errorf("referrers %v", got)
	}
	if got := string(e.file(storage.TagCurrentLinkPath(repo, fallbackTag(subject.Digest)))); got != imageD.String() {
		t.Errorf("the user's tag now names %s, want %s", got, imageD)
	}
}

// fallbackList reads the fallback tag's index from storage: nil when
// there is no tag.
func (e *mfEnv) fallbackList(repo string, subject digest.Digest) []digest.Digest {
	e.t.Helper()
	p := storage.TagCurrentLinkPath(repo, fallbackTag(subject))
	if !e.exists(p) {
		return nil
	}
	var ix ocispec.Index
	if err := json.Unmarshal(e.file(storage.BlobDataPath(digest.Digest(e.file(p)))), &ix); err != nil {
		e.t.Fatal(err)
	}
	if ix.MediaType != ocispec.MediaTypeImageIndex || ix.SchemaVersion != 2 {
		e.t.Errorf("fallback index %+v", ix)
	}
	return referrerDigests(ix)
}

// TestReferrersFallbackTagsKept: with regctl.referrers.fallbacktags, every
// referrer push and delete leaves the fallback tag listing exactly the
// referrers, so Distribution on the same root sees them.
func TestReferrersFallbackTagsKept(t *testing.T) {
	e := newMfEnv(t, Options{DeleteEnabled: true, ReferrersFallbackTags: true})
	repo := "sig/app"
	subject := e.subjectOf(repo, "v1")

	// One referrer was there before, written through Distribution.
	old := e.referrer(repo, "old", sigType, subject)
	oldD := e.putRevision(repo, old)
	fb := e.mustPush(repo, fallbackTag(subject.Digest), ocispec.MediaTypeImageIndex, fallbackIndexOf(t, old))

	a := e.referrer(repo, "a", sigType, subject)
	aD := e.mustPush(repo, digest.FromBytes(a).String(), ocispec.MediaTypeImageManifest, a)
	b := e.referrer(repo, "b", sbomType, subject)
	bD := e.mustPush(repo, digest.FromBytes(b).String(), ocispec.MediaTypeImageManifest, b)
	if got, want := e.fallbackList(repo, subject.Digest), sortedDigests(oldD, aD, bD); !slices.Equal(got, want) {
		t.Fatalf("fallback after two pushes: %v, want %v", got, want)
	}
	// The fallback holds what the API answers, byte for byte.
	cur := digest.Digest(e.file(storage.TagCurrentLinkPath(repo, fallbackTag(subject.Digest))))
	api := e.do(http.MethodGet, "/v2/"+repo+"/referrers/"+subject.Digest.String(), nil, nil)
	if string(e.file(storage.BlobDataPath(cur))) != string(api.body) {
		t.Errorf("fallback index\n%s\nreferrers API\n%s", e.file(storage.BlobDataPath(cur)), api.body)
	}
	if cur == fb {
		t.Errorf("fallback tag not rewritten")
	}

	for _, d := range []digest.Digest{oldD, aD} {
		if r := e.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+d.String(), nil, nil); r.code != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s", d, r.code, r.body)
		}
	}
	if got := e.fallbackList(repo, subject.Digest); !slices.Equal(got, []digest.Digest{bD}) {
		t.Fatalf("fallback after deletes: %v, want [%s]", got, bD)
	}
	if r := e.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+bD.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if e.exists(storage.TagDir(repo, fallbackTag(subject.Digest))) {
		t.Errorf("the fallback tag outlived the last referrer")
	}
	// The subject itself is untouched.
	if r := e.do(http.MethodGet, "/v2/"+repo+"/manifests/v1", nil, nil); r.code != http.StatusOK {
		t.Errorf("subject: %d", r.code)
	}
}

// TestReferrersFallbackTagsTwoNodes forces two nodes on one root to race
// on one subject's fallback tag: node A reads, node B pushes and writes
// the tag, then A writes what it read. A must notice and rewrite, so no
// referrer is missing from the tag.
func TestReferrersFallbackTagsTwoNodes(t *testing.T) {
	e := newMfEnv(t, Options{DeleteEnabled: true, ReferrersFallbackTags: true})
	repo := "race/app"
	subject := e.subjectOf(repo, "v1")

	nodeA := New(Options{Driver: e.fs, DeleteEnabled: true, ReferrersFallbackTags: true})
	aRead, bDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	nodeA.beforeFallbackWrite = func() {
		once.Do(func() {
			close(aRead)
			<-bDone
		})
	}
	srvA := httptest.NewServer(nodeA)
	defer srvA.Close()

	a := e.referrer(repo, "a", sigType, subject)
	aD := digest.FromBytes(a)
	pushed := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, srvA.URL+"/v2/"+repo+"/manifests/"+aD.String(), bytes.NewReader(a))
		req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
		res, err := srvA.Client().Do(req)
		if err != nil {
			pushed <- 0
			return
		}
		res.Body.Close()
		pushed <- res.StatusCode
	}()
	<-aRead
	b := e.referrer(repo, "b", sigType, subject)
	bD := e.mustPush(repo, digest.FromBytes(b).String(), ocispec.MediaTypeImageManifest, b) // node B
	if got, want := e.fallbackList(repo, subject.Digest), sortedDigests(aD, bD); !slices.Equal(got, want) {
		t.Fatalf("node B wrote %v, want %v", got, want)
	}
	close(bDone)
	if code := <-pushed; code != http.StatusCreated {
		t.Fatalf("node A push: %d", code)
	}
	if got, want := e.fallbackList(repo, subject.Digest), sortedDigests(aD, bD); !slices.Equal(got, want) {
		t.Errorf("after both nodes: fallback lists %v, want %v", got, want)
	}
}

// TestBackfillFallbackTags: referrers pushed while fallback tags were off
// get their fallback tag from one backfill pass, nested repositories
// included; maintenance refuses the pass before it writes anything.
func TestBackfillFallbackTags(t *testing.T) {
	e := newMfEnvDefault(t) // fallback tags off
	type pushed struct {
		repo    string
		subject digest.Digest
		refs    []digest.Digest
	}
	var all []pushed
	for _, repo := range []string{"a/b", "a/b/c", "z"} {
		subject := e.subjectOf(repo, "v1")
		p := pushed{repo: repo, subject: subject.Digest}
		for _, seed := range []string{"sig", "sbom"} {
			ref := e.referrer(repo, seed+repo, sigType, subject)
			p.refs = append(p.refs, e.mustPush(repo, digest.FromBytes(ref).String(), ocispec.MediaTypeImageManifest, ref))
		}
		all = append(all, p)
	}
	for _, p := range all {
		if got := e.fallbackList(p.repo, p.subject); got != nil {
			t.Fatalf("%s: fallback tag written with fallback tags off: %v", p.repo, got)
		}
	}

	on := New(Options{Driver: e.fs, DeleteEnabled: true, ReferrersFallbackTags: true})
	on.SetMaintenance("garbage collection by a test")
	if n, err := on.BackfillFallbackTags(context.Background()); err == nil || n != 0 {
		t.Fatalf("during maintenance: %d subjects, err %v", n, err)
	}
	for _, p := range all {
		if e.exists(storage.TagDir(p.repo, fallbackTag(p.subject))) {
			t.Fatalf("%s: backfill wrote during maintenance", p.repo)
		}
	}
	on.ClearMaintenance()

	n, err := on.BackfillFallbackTags(context.Background())
	if err != nil || n != len(all) {
		t.Fatalf("backfill: %d subjects, err %v; want %d", n, err, len(all))
	}
	tags := map[string]string{}
	for _, p := range all {
		if got, want := e.fallbackList(p.repo, p.subject), sortedDigests(p.refs...); !slices.Equal(got, want) {
			t.Errorf("%s: fallback lists %v, want %v", p.repo, got, want)
		}
		tags[p.repo] = string(e.file(storage.TagCurrentLinkPath(p.repo, fallbackTag(p.subject))))
	}

	// A second pass finds everything right and rewrites nothing.
	if _, err := on.BackfillFallbackTags(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		idx := storage.TagIndexDir(p.repo, fallbackTag(p.subject))
		entries, err := e.fs.List(context.Background(), idx+"/sha256")
		if err != nil || len(entries) != 1 {
			t.Errorf("%s: tag history %v (%v): the second pass rewrote the tag", p.repo, entries, err)
		}
		if got := string(e.file(storage.TagCurrentLinkPath(p.repo, fallbackTag(p.subject)))); got != tags[p.repo] {
			t.Errorf("%s: tag moved on the second pass", p.repo)
		}
	}
}

// opsDriver is a countingDriver that counts listings too, and the paths
// they cover.
type opsDriver struct {
	countingDriver
	lists  atomic.Int64
	listed sync.Map // path -> true
}

func (o *opsDriver) ops() int64 { return o.reads.Load() + o.lists.Load() }

func (o *opsDriver) List(ctx context.Context, p string) ([]string, error) {
	o.lists.Add(1)
	o.listed.Store(p, true)
	return o.Driver.List(ctx, p)
}

func (o *opsDriver) Walk(ctx context.Context, p string, fn func(storage.FileInfo) error) error {
	o.lists.Add(1)
	o.listed.Store(p, true)
	return o.Driver.Walk(ctx, p, fn)
}

// TestReferrersCostPerRequest: listing a subject's referrers reads its
// own folder of regctl's index, its fallback tag and its candidates, and
// nothing that grows with the repository: the same number of storage
// operations before and after the repository gains 30 more images and
// the referrers of 10 other subjects.
func TestReferrersCostPerRequest(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "big/app"
	subject := e.subjectOf(repo, "v1")
	old := e.referrer(repo, "old", sigType, subject)
	e.putRevision(repo, old)
	e.mustPush(repo, fallbackTag(subject.Digest), ocispec.MediaTypeImageIndex, fallbackIndexOf(t, old))
	own := e.referrer(repo, "own", sbomType, subject)
	e.mustPush(repo, digest.FromBytes(own).String(), ocispec.MediaTypeImageManifest, own)

	drv := &opsDriver{countingDriver: countingDriver{Driver: e.fs}}
	srv := httptest.NewServer(New(Options{Driver: drv}))
	defer srv.Close()
	cost := func() int64 {
		t.Helper()
		before := drv.ops()
		res, err := http.Get(srv.URL + "/v2/" + repo + "/referrers/" + subject.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		var ix ocispec.Index
		err = json.NewDecoder(res.Body).Decode(&ix)
		res.Body.Close()
		if err != nil || len(ix.Manifests) != 2 {
			t.Fatalf("referrers: %v %+v", err, ix.Manifests)
		}
		return drv.ops() - before
	}
	small := cost()

	for i := range 30 {
		e.subjectOf(repo, "other"+strconv.Itoa(i))
	}
	for i := range 10 {
		s := e.subjectOf(repo, "signed"+strconv.Itoa(i))
		r := e.referrer(repo, "sig"+strconv.Itoa(i), sigType, s)
		e.mustPush(repo, digest.FromBytes(r).String(), ocispec.MediaTypeImageManifest, r)
	}
	if large := cost(); large != small {
		t.Errorf("a referrers request made %d storage operations, then %d in a larger repository", small, large)
	}
	drv.listed.Range(func(k, _ any) bool {
		if k.(string) != storage.ReferrersDir(repo, subject.Digest) {
			t.Errorf("a referrers request listed %s", k)
		}
		return true
	})
	t.Logf("storage operations per referrers request: %d", small)
}
