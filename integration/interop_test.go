package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"regctl/internal/testtools"
)

// fixtureExpected is testdata/distribution-root/expected.json, written by
// testdata/make-distribution-root.go.
type fixtureExpected struct {
	GeneratedBy  string   `json:"generated_by"`
	Catalog      []string `json:"catalog"`
	Repositories map[string]struct {
		Tags      map[string]string   `json:"tags"`
		TagIndex  map[string][]string `json:"tag_index"`
		Manifests map[string]string   `json:"manifests"`
		Blobs     []string            `json:"blobs"`
	} `json:"repositories"`
}

// TestServeDistributionRoot serves a storage root that CNCF Distribution
// v3.1.2 wrote (a re-tagged tag with two index entries, a Docker schema2
// image, an OCI image and an OCI index) and pulls every tag, manifest and
// blob back with go-containerregistry.
func TestServeDistributionRoot(t *testing.T) {
	fixture := filepath.Join(testtools.RepoRoot(t), "testdata", "distribution-root")
	var exp fixtureExpected
	b, err := os.ReadFile(filepath.Join(fixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}

	// regctl serves a copy: a test must never change the fixture.
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.CopyFS(root, os.DirFS(fixture)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "expected.json")); err != nil {
		t.Fatal(err)
	}
	// The fixture is what the tests rely on: a tag moved once keeps both
	// revisions in its index, as Distribution writes it.
	for repo, r := range exp.Repositories {
		for tag, revs := range r.TagIndex {
			ents, err := os.ReadDir(filepath.Join(root, "docker/registry/v2/repositories", repo, "_manifests/tags", tag, "index/sha256"))
			if err != nil || len(ents) != len(revs) {
				t.Fatalf("fixture %s:%s index has %d entries (%v), want %d: remake it", repo, tag, len(ents), err, len(revs))
			}
		}
	}
	if got := exp.Repositories["interop/app"].TagIndex["stable"]; len(got) != 2 {
		t.Fatalf("fixture: interop/app:stable should have two index entries, has %v", got)
	}

	addr := testtools.FreeAddr(t)
	cfg := filepath.Join(dir, "config.yml")
	serveCfg{Addr: addr, Root: root}.write(t, cfg)
	startServeT(t, cfg, addr)
	ctx := context.Background()

	reg, err := name.NewRegistry(addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := remote.Catalog(ctx, reg)
	if err != nil || !slices.Equal(catalog, exp.Catalog) {
		t.Errorf("catalog %v (%v), want %v", catalog, err, exp.Catalog)
	}

	for repoName, r := range exp.Repositories {
		repo, err := name.NewRepository(addr+"/"+repoName, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		wantTags := make([]string, 0, len(r.Tags))
		for tag := range r.Tags {
			wantTags = append(wantTags, tag)
		}
		sort.Strings(wantTags)
		tags, err := remote.List(repo)
		if err != nil || !slices.Equal(tags, wantTags) {
			t.Errorf("%s tags %v (%v), want %v", repoName, tags, err, wantTags)
		}
		// The raw tags/list body, as docker and GitLab read it.
		resp, body := do(t, http.MethodGet, addr, "/v2/"+repoName+"/tags/list", nil, nil)
		var tl struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tl) != nil || tl.Name != repoName || !slices.Equal(tl.Tags, wantTags) {
			t.Errorf("GET %s/tags/list = %s %s", repoName, resp.Status, body)
		}

		for tag, want := range r.Tags {
			desc, err := remote.Get(repo.Tag(tag))
			if err != nil {
				t.Errorf("pull %s:%s: %v", repoName, tag, err)
				continue
			}
			if desc.Digest.String() != want || sha256Digest(desc.Manifest) != want {
				t.Errorf("%s:%s = %s (body %s), want %s", repoName, tag, desc.Digest, sha256Digest(desc.Manifest), want)
			}
		}
		for d, mt := range r.Manifests {
			desc, err := remote.Get(repo.Digest(d))
			if err != nil {
				t.Errorf("pull %s@%s: %v", repoName, d, err)
				continue
			}
			if sha256Digest(desc.Manifest) != d || string(desc.MediaType) != mt {
				t.Errorf("%s@%s: body digest %s, media type %s; want %s", repoName, d, sha256Digest(desc.Manifest), desc.MediaType, mt)
			}
			// Every image and index verifies end to end: layers, diff
			// ids, config and children.
			if desc.MediaType.IsIndex() {
				idx, err := desc.ImageIndex()
				if err == nil {
					err = verifyIndex(idx)
				}
				if err != nil {
					t.Errorf("%s@%s: %v", repoName, d, err)
				}
			} else {
				img, err := desc.Image()
				if err == nil {
					err = verifyImage(img)
				}
				if err != nil {
					t.Errorf("%s@%s: %v", repoName, d, err)
				}
			}
		}
		for _, d := range r.Blobs {
			l, err := remote.Layer(repo.Digest(d))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Errorf("blob %s@%s: %v", repoName, d, err)
				continue
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || sha256Digest(body) != d {
				t.Errorf("blob %s@%s: read %d bytes with digest %s (%v)", repoName, d, len(body), sha256Digest(body), err)
			}
		}
	}
}

// TestDistributionServesRegctlRoot pushes to regctl serve, then serves the
// same root with CNCF Distribution and pulls everything back; a manifest
// deleted through Distribution is then gone for regctl too.
func TestDistributionServesRegctlRoot(t *testing.T) {
	testtools.Tool(t, testtools.DistributionTool)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	addr := testtools.FreeAddr(t)
	regctlCfg := filepath.Join(dir, "regctl.yml")
	serveCfg{Addr: addr, Root: root}.write(t, regctlCfg)
	p := startServeT(t, regctlCfg, addr)

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	old, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgDigest, _ := img.Digest()
	oldDigest, _ := old.Digest()
	idxDigest, _ := idx.Digest()
	ref := func(addr, s string) name.Reference {
		return mustRef(t, addr+"/"+s)
	}
	// "latest" points at old first and then at img, so its tag index has
	// two entries; "v1" points at img too.
	if err := remote.Write(ref(addr, "rev/app:latest"), old); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(addr, "rev/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(ref(addr, "rev/app:latest").(name.Tag), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(addr, "rev/multi:1.0"), idx); err != nil {
		t.Fatal(err)
	}
	closeClientConns()
	p.Stop()

	daddr := testtools.FreeAddr(t)
	distCfg := filepath.Join(dir, "distribution.yml")
	if err := os.WriteFile(distCfg, []byte("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "+root+
		"\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: "+daddr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dist := testtools.StartDistribution(t, distCfg, daddr)

	reg, _ := name.NewRegistry(daddr, name.Insecure)
	if repos, err := remote.Catalog(context.Background(), reg); err != nil || join(repos) != "rev/app,rev/multi" {
		t.Errorf("Distribution's catalog %v (%v)", repos, err)
	}
	if tags, err := remote.List(ref(daddr, "rev/app:x").Context()); err != nil || join(tags) != "latest,v1" {
		t.Errorf("Distribution's tags %v (%v)", tags, err)
	}
	for _, tc := range []struct {
		ref  string
		want v1.Hash
	}{
		{"rev/app:latest", imgDigest},
		{"rev/app:v1", imgDigest},
		{"rev/app@" + oldDigest.String(), oldDigest},
		{"rev/multi:1.0", idxDigest},
	} {
		desc, err := remote.Get(ref(daddr, tc.ref))
		if err != nil {
			t.Errorf("Distribution: pull %s: %v", tc.ref, err)
			continue
		}
		if desc.Digest != tc.want || sha256Digest(desc.Manifest) != tc.want.String() {
			t.Errorf("Distribution: %s = %s, want %s", tc.ref, desc.Digest, tc.want)
		}
		if desc.MediaType.IsIndex() {
			ii, err := desc.ImageIndex()
			if err == nil {
				err = verifyIndex(ii)
			}
			if err != nil {
				t.Errorf("Distribution: %s: %v", tc.ref, err)
			}
			continue
		}
		im, err := desc.Image()
		if err == nil {
			err = verifyImage(im)
		}
		if err != nil {
			t.Errorf("Distribution: %s: %v", tc.ref, err)
		}
	}

	// Delete img through Distribution: its revision and both tags that
	// point at it go.
	if err := remote.Delete(ref(daddr, "rev/app@"+imgDigest.String())); err != nil {
		t.Fatalf("Distribution: delete manifest: %v", err)
	}
	closeClientConns()
	dist.Stop()

	addr2 := testtools.FreeAddr(t)
	serveCfg{Addr: addr2, Root: root}.write(t, regctlCfg)
	startServeT(t, regctlCfg, addr2)
	for _, r := range []string{"rev/app@" + imgDigest.String(), "rev/app:v1", "rev/app:latest"} {
		_, err := remote.Get(ref(addr2, r))
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
			t.Errorf("regctl after Distribution's delete: %s: %v, want 404", r, err)
		}
	}
	resp, body := do(t, http.MethodGet, addr2, "/v2/rev/app/manifests/"+imgDigest.String(), nil, nil)
	if resp.StatusCode != http.StatusNotFound || decodeOCIError(t, body).Code != "MANIFEST_UNKNOWN" {
		t.Errorf("GET deleted manifest = %s %s, want 404 MANIFEST_UNKNOWN", resp.Status, body)
	}
	// What was not deleted still pulls.
	if desc, err := remote.Get(ref(addr2, "rev/app@"+oldDigest.String())); err != nil || desc.Digest != oldDigest {
		t.Errorf("regctl: pull the untouched revision: %v", err)
	}
	if desc, err := remote.Get(ref(addr2, "rev/multi:1.0")); err != nil || desc.Digest != idxDigest {
		t.Errorf("regctl: pull the index: %v", err)
	}
	if tags, err := remote.List(ref(addr2, "rev/app:x").Context()); err != nil || len(tags) != 0 {
		t.Errorf("regctl: tags after the delete %v (%v), want none", tags, err)
	}
}

// verifyImage reads an image's config and every layer and checks each
// against the digest and size its manifest gives.
func verifyImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if sha256Digest(cfg) != m.Config.Digest.String() || int64(len(cfg)) != m.Config.Size {
		return fmt.Errorf("config: %d bytes with digest %s, manifest says %d, %s", len(cfg), sha256Digest(cfg), m.Config.Size, m.Config.Digest)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) {
		return fmt.Errorf("%d layers, manifest lists %d", len(layers), len(m.Layers))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", m.Layers[i].Digest, err)
		}
		if sha256Digest(b) != m.Layers[i].Digest.String() || int64(len(b)) != m.Layers[i].Size {
			return fmt.Errorf("layer %d: %d bytes with digest %s, manifest says %d, %s", i, len(b), sha256Digest(b), m.Layers[i].Size, m.Layers[i].Digest)
		}
	}
	return nil
}

// verifyIndex verifies every image an index lists.
func verifyIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) == 0 {
		return errors.New("empty index")
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("child %s: %w", d.Digest, err)
		}
		if got, err := img.Digest(); err != nil || got != d.Digest {
			return fmt.Errorf("child %s: digest %s (%v)", d.Digest, got, err)
		}
		if err := verifyImage(img); err != nil {
			return fmt.Errorf("child %s: %w", d.Digest, err)
		}
	}
	return nil
}
