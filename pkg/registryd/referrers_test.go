package registryd

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

const (
	sbomType = "application/vnd.example.sbom.v1"
	sigType  = "application/vnd.example.signature.v1"
)

func getReferrersList(t *testing.T, e *mfEnv, path string) (ocispec.Index, mfResp) {
	t.Helper()
	r := e.do(http.MethodGet, path, nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != ocispec.MediaTypeImageIndex {
		t.Errorf("Content-Type %q", ct)
	}
	var ix ocispec.Index
	if err := json.Unmarshal(r.body, &ix); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	if ix.SchemaVersion != 2 || ix.MediaType != ocispec.MediaTypeImageIndex || ix.Manifests == nil {
		t.Errorf("not an image index with a manifests list: %s", r.body)
	}
	return ix, r
}

func TestReferrers(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "sig/app"
	subjectBody := e.image(repo, "subject", nil)
	subject := e.mustPush(repo, "v1", ocispec.MediaTypeImageManifest, subjectBody)
	subjectDesc := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: int64(len(subjectBody))}

	// An SBOM with an artifactType, a signature typed by its config, and
	// an index: each pushed with the subject.
	sbom := e.image(repo, "sbom", func(m *ocispec.Manifest) {
		m.ArtifactType = sbomType
		m.Config = e.putBlob(repo, ocispec.MediaTypeEmptyJSON, []byte("{}"))
		m.Subject = subjectDesc
		m.Annotations = map[string]string{"org.example.format": "spdx"}
	})
	sig := e.image(repo, "sig", func(m *ocispec.Manifest) {
		m.Config.MediaType = sigType
		m.Subject = subjectDesc
	})
	child := e.image(repo, "child", nil)
	childDigest := e.mustPush(repo, digest.FromBytes(child).String(), ocispec.MediaTypeImageManifest, child)
	index := mustJSON(t, ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: childDigest, Size: int64(len(child))}},
		Subject:     subjectDesc,
		Annotations: map[string]string{"kind": "index"},
	})

	want := map[digest.Digest]ocispec.Descriptor{}
	for _, p := range []struct {
		ref, mediaType string
		body           []byte
		artifactType   string
		annotations    map[string]string
	}{
		{"", ocispec.MediaTypeImageManifest, sbom, sbomType, map[string]string{"org.example.format": "spdx"}},
		{"sig", ocispec.MediaTypeImageManifest, sig, sigType, nil},
		{"", ocispec.MediaTypeImageIndex, index, "", map[string]string{"kind": "index"}},
	} {
		d := digest.FromBytes(p.body)
		ref := p.ref
		if ref == "" {
			ref = d.String()
		}
		r := e.push(repo, ref, p.mediaType, p.body)
		if r.code != http.StatusCreated {
			t.Fatalf("push referrer: %d %s", r.code, r.body)
		}
		if got := r.hdr.Get("OCI-Subject"); got != subject.String() {
			t.Errorf("OCI-Subject %q, want %s", got, subject)
		}
		if got := e.file(storage.ReferrerLinkPath(repo, subject, d)); string(got) != d.String() {
			t.Errorf("referrer link %q", got)
		}
		want[d] = ocispec.Descriptor{MediaType: p.mediaType, Digest: d, Size: int64(len(p.body)), ArtifactType: p.artifactType, Annotations: p.annotations}
	}

	ix, r := getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.String())
	if r.hdr.Get("OCI-Filters-Applied") != "" {
		t.Errorf("OCI-Filters-Applied without a filter")
	}
	if len(ix.Manifests) != len(want) {
		t.Fatalf("%d referrers, want %d: %s", len(ix.Manifests), len(want), r.body)
	}
	for _, got := range ix.Manifests {
		w, ok := want[got.Digest]
		if !ok {
			t.Errorf("unexpected referrer %s", got.Digest)
			continue
		}
		gb, wb := mustJSON(t, got), mustJSON(t, w)
		if string(gb) != string(wb) {
			t.Errorf("descriptor\n got %s\nwant %s", gb, wb)
		}
	}

	ix, r = getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.String()+"?artifactType="+sbomType)
	if r.hdr.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q", r.hdr.Get("OCI-Filters-Applied"))
	}
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest != digest.FromBytes(sbom) {
		t.Errorf("filtered: %s", r.body)
	}
	ix, r = getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.String()+"?artifactType=application/none")
	if len(ix.Manifests) != 0 || r.hdr.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filter matching nothing: %s", r.body)
	}

	// No referrers, or no repository: an empty list, never a 404.
	for _, p := range []string{
		"/v2/" + repo + "/referrers/" + childDigest.String(),
		"/v2/" + repo + "/referrers/" + digest.FromString("unknown").String(),
		"/v2/no/such/repo/referrers/" + subject.String(),
	} {
		if ix, r := getReferrersList(t, e, p); len(ix.Manifests) != 0 {
			t.Errorf("%s: %s", p, r.body)
		}
	}
	wantError(t, e.do(http.MethodGet, "/v2/"+repo+"/referrers/sha256:nothex", nil, nil), http.StatusBadRequest, CodeDigestInvalid)
	wantError(t, e.do(http.MethodGet, "/v2/"+repo+"/referrers/latest", nil, nil), http.StatusBadRequest, CodeDigestInvalid)

	// Deleting a referrer drops it and its link.
	sigDigest := digest.FromBytes(sig)
	if r := e.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+sigDigest.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete referrer: %d %s", r.code, r.body)
	}
	if e.exists(storage.ReferrerLinkPath(repo, subject, sigDigest)) {
		t.Errorf("referrer link survived the delete")
	}
	if ix, r := getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.String()); len(ix.Manifests) != 2 {
		t.Errorf("after delete: %s", r.body)
	}

	// A link whose revision another program deleted is skipped.
	if err := e.fs.Delete(context.Background(), storage.ManifestRevisionDir(repo, digest.FromBytes(index))); err != nil {
		t.Fatal(err)
	}
	ix, r = getReferrersList(t, e, "/v2/"+repo+"/referrers/"+subject.String())
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest != digest.FromBytes(sbom) {
		t.Errorf("with a stale link: %s", r.body)
	}
}

func TestReferrerBeforeSubject(t *testing.T) {
	e := newMfEnvDefault(t)
	future := digest.FromString("pushed later")
	ref := e.image("early", "r", func(m *ocispec.Manifest) {
		m.ArtifactType = sbomType
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: future, Size: 3}
	})
	r := e.push("early", "sbom", ocispec.MediaTypeImageManifest, ref)
	if r.code != http.StatusCreated || r.hdr.Get("OCI-Subject") != future.String() {
		t.Fatalf("push: %d OCI-Subject %q %s", r.code, r.hdr.Get("OCI-Subject"), r.body)
	}
	ix, _ := getReferrersList(t, e, "/v2/early/referrers/"+future.String())
	if len(ix.Manifests) != 1 || ix.Manifests[0].ArtifactType != sbomType {
		t.Errorf("referrers of a subject not yet pushed: %+v", ix.Manifests)
	}

	// A sha512 subject is indexed under its own algorithm.
	s512 := digest.SHA512.FromString("subject")
	ref2 := e.image("early", "r2", func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: s512, Size: 3}
	})
	e.mustPush("early", "sig", ocispec.MediaTypeImageManifest, ref2)
	ix, _ = getReferrersList(t, e, "/v2/early/referrers/"+s512.String())
	if len(ix.Manifests) != 1 || ix.Manifests[0].ArtifactType != ocispec.MediaTypeImageConfig {
		t.Errorf("sha512 subject: %+v", ix.Manifests)
	}
}
