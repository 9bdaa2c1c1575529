package integration

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"regctl/internal/testtools"
)

// TestGoContainerRegistryClient pushes, pulls and copies a multi-arch
// index and an image with a referrer using go-containerregistry, the
// library behind crane, ko and many CI tools.
func TestGoContainerRegistryClient(t *testing.T) {
	addr := testtools.FreeAddr(t)
	startServe(t, serveConfig(t, addr, ""), addr)
	opts := []remote.Option{}

	// A multi-arch index of three images.
	idx, err := random.Index(1024, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	idxRef := mustRef(t, addr+"/team/app:multi")
	if err := remote.WriteIndex(idxRef, idx, opts...); err != nil {
		t.Fatalf("push index: %v", err)
	}
	pulled, err := remote.Index(idxRef, opts...)
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	wantDigest, _ := idx.Digest()
	if got, _ := pulled.Digest(); got != wantDigest {
		t.Errorf("index digest %s, want %s", got, wantDigest)
	}
	im, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range im.Manifests {
		img, err := pulled.Image(desc.Digest)
		if err != nil {
			t.Fatalf("child %s: %v", desc.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("pull layer: %v", err)
			}
			rc.Close()
		}
	}

	// Copy to another repository (cross-repository mounts).
	if err := crane.Copy(addr+"/team/app:multi", addr+"/other/copy:v1", crane.Insecure); err != nil {
		t.Fatalf("crane copy: %v", err)
	}
	copied, err := crane.Digest(addr+"/other/copy:v1", crane.Insecure)
	if err != nil || copied != wantDigest.String() {
		t.Errorf("copy digest %s (%v), want %s", copied, err, wantDigest)
	}

	// An image and a signature-like referrer pointing at it.
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgRef := mustRef(t, addr+"/team/app:signed")
	if err := remote.Write(imgRef, img, opts...); err != nil {
		t.Fatalf("push image: %v", err)
	}
	imgDesc, err := remote.Head(imgRef, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.example.signature.v1+json")
	sig, err = mutate.Append(sig, mutate.Addendum{Layer: static.NewLayer([]byte("signature"), "application/vnd.example.signature.payload")})
	if err != nil {
		t.Fatal(err)
	}
	sig = mutate.Subject(sig, *imgDesc).(v1.Image)
	sigDigest, _ := sig.Digest()
	sigRef := mustRef(t, addr+"/team/app@"+sigDigest.String())
	if err := remote.Write(sigRef, sig, opts...); err != nil {
		t.Fatalf("push referrer: %v", err)
	}
	refs, err := remote.Referrers(imgRef.Context().Digest(imgDesc.Digest.String()), opts...)
	if err != nil {
		t.Fatalf("referrers: %v", err)
	}
	rm, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != sigDigest {
		t.Fatalf("referrers = %+v, want the signature %s", rm.Manifests, sigDigest)
	}
	if rm.Manifests[0].ArtifactType != "application/vnd.example.signature.v1+json" {
		t.Errorf("artifactType %q", rm.Manifests[0].ArtifactType)
	}

	// Tags and catalog as crane lists them.
	tags, err := crane.ListTags(addr+"/team/app", crane.Insecure)
	if err != nil || !bytes.Equal([]byte(join(tags)), []byte("multi,signed")) {
		t.Errorf("tags %v (%v), want [multi signed]", tags, err)
	}
	repos, err := crane.Catalog(addr, crane.Insecure)
	if err != nil || join(repos) != "other/copy,team/app" {
		t.Errorf("catalog %v (%v)", repos, err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func join(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}
