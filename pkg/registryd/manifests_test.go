package registryd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

// mfEnv is a registry on a real filesystem driver in a temporary folder,
// for the manifest, tag, catalog and referrers tests.
type mfEnv struct {
	t    *testing.T
	root string
	fs   storage.Driver
	srv  *httptest.Server
}

type mfResp struct {
	code int
	hdr  http.Header
	body []byte
}

func newMfEnv(t *testing.T, opts Options) *mfEnv {
	t.Helper()
	root := t.TempDir()
	fs, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	opts.Driver = fs
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return &mfEnv{t: t, root: root, fs: fs, srv: srv}
}

func newMfEnvDefault(t *testing.T) *mfEnv {
	return newMfEnv(t, Options{DeleteEnabled: true})
}

func (e *mfEnv) do(method, path string, hdr map[string]string, body []byte) mfResp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return mfResp{code: res.StatusCode, hdr: res.Header, body: b}
}

// putBlob stores a blob in repo through the driver: data plus layer link.
func (e *mfEnv) putBlob(repo, mediaType string, data []byte) ocispec.Descriptor {
	e.t.Helper()
	d := digest.FromBytes(data)
	ctx := context.Background()
	if err := e.fs.PutContent(ctx, storage.BlobDataPath(d), data); err != nil {
		e.t.Fatal(err)
	}
	if err := e.fs.PutContent(ctx, storage.LayerLinkPath(repo, d), []byte(d)); err != nil {
		e.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// image builds an OCI image manifest whose config and one layer are in
// repo; seed makes each call's blobs and manifest distinct.
func (e *mfEnv) image(repo, seed string, edit func(*ocispec.Manifest)) []byte {
	e.t.Helper()
	cfg := e.putBlob(repo, ocispec.MediaTypeImageConfig, []byte(`{"seed":"`+seed+`"}`))
	layer := e.putBlob(repo, ocispec.MediaTypeImageLayerGzip, []byte("layer "+seed))
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    []ocispec.Descriptor{layer},
	}
	if edit != nil {
		edit(&m)
	}
	return mustJSON(e.t, m)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *mfEnv) push(repo, ref, mediaType string, body []byte) mfResp {
	e.t.Helper()
	return e.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": mediaType}, body)
}

// mustPush pushes and fails the test unless the registry answers 201.
func (e *mfEnv) mustPush(repo, ref, mediaType string, body []byte) digest.Digest {
	e.t.Helper()
	r := e.push(repo, ref, mediaType, body)
	if r.code != http.StatusCreated {
		e.t.Fatalf("push %s:%s: %d %s", repo, ref, r.code, r.body)
	}
	return digest.Digest(r.hdr.Get("Docker-Content-Digest"))
}

// file reads a driver path straight from disk.
func (e *mfEnv) file(p string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, filepath.FromSlash(p)))
	if err != nil {
		e.t.Fatalf("reading %s: %v", p, err)
	}
	return b
}

func (e *mfEnv) exists(p string) bool {
	_, err := os.Stat(filepath.Join(e.root, filepath.FromSlash(p)))
	return err == nil
}

// errorCode is the code of the first error in an OCI error body.
func errorCode(t *testing.T, r mfResp) string {
	t.Helper()
	var env struct {
		Errors []struct {
			Code   string          `json:"code"`
			Detail json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("not an OCI error body (%d): %q", r.code, r.body)
	}
	return env.Errors[0].Code
}

func wantError(t *testing.T, r mfResp, status int, code string) {
	t.Helper()
	if r.code != status {
		t.Fatalf("status %d, want %d; body %s", r.code, status, r.body)
	}
	if got := errorCode(t, r); got != code {
		t.Fatalf("code %s, want %s; body %s", got, code, r.body)
	}
}

func TestPutManifestByTag(t *testing.T) {
	e := newMfEnvDefault(t)
	body := e.image("team/app", "a", nil)
	r := e.push("team/app", "v1", ocispec.MediaTypeImageManifest, body)
	if r.code != http.StatusCreated {
		t.Fatalf("push: %d %s", r.code, r.body)
	}
	d := digest.FromBytes(body)
	if got := r.hdr.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("Docker-Content-Digest %q, want %s", got, d)
	}
	if got, want := r.hdr.Get("Location"), e.srv.URL+"/v2/team/app/manifests/"+d.String(); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got := r.hdr.Get("Content-Length"); got != "0" {
		t.Errorf("Content-Length %q, want 0", got)
	}
	if r.hdr.Get("OCI-Subject") != "" {
		t.Errorf("OCI-Subject set for a manifest without subject")
	}

	// On disk, exactly Distribution's layout.
	if got := e.file(storage.BlobDataPath(d)); !bytes.Equal(got, body) {
		t.Errorf("stored manifest differs from the pushed bytes")
	}
	for _, p := range []string{
		storage.ManifestRevisionLinkPath("team/app", d),
		storage.TagCurrentLinkPath("team/app", "v1"),
		storage.TagIndexEntryLinkPath("team/app", "v1", d),
	} {
		if got := e.file(p); string(got) != d.String() {
			t.Errorf("%s = %q, want %q", p, got, d)
		}
	}
	if n := len(e.file(storage.TagCurrentLinkPath("team/app", "v1"))); n != 71 {
		t.Errorf("current/link is %d bytes, want 71", n)
	}

	for _, ref := range []string{"v1", d.String()} {
		g := e.do(http.MethodGet, "/v2/team/app/manifests/"+ref, nil, nil)
		if g.code != http.StatusOK || !bytes.Equal(g.body, body) {
			t.Fatalf("GET %s: %d %s", ref, g.code, g.body)
		}
		for k, want := range map[string]string{
			"Content-Type":          ocispec.MediaTypeImageManifest,
			"Content-Length":        fmt.Sprint(len(body)),
			"Docker-Content-Digest": d.String(),
			"ETag":                  `"` + d.String() + `"`,
		} {
			if got := g.hdr.Get(k); got != want {
				t.Errorf("GET %s: %s %q, want %q", ref, k, got, want)
			}
		}
		h := e.do(http.MethodHead, "/v2/team/app/manifests/"+ref, nil, nil)
		if h.code != http.StatusOK || len(h.body) != 0 {
			t.Errorf("HEAD %s: %d, body %d bytes", ref, h.code, len(h.body))
		}
		if got := h.hdr.Get("Content-Length"); got != fmt.Sprint(len(body)) {
			t.Errorf("HEAD %s: Content-Length %q", ref, got)
		}
		if got := h.hdr.Get("Docker-Content-Digest"); got != d.String() {
			t.Errorf("HEAD %s: Docker-Content-Digest %q", ref, got)
		}
	}
	nm := e.do(http.MethodGet, "/v2/team/app/manifests/v1", map[string]string{"If-None-Match": `"` + d.String() + `"`}, nil)
	if nm.code != http.StatusNotModified || len(nm.body) != 0 {
		t.Errorf("If-None-Match: %d, want 304 with no body", nm.code)
	}
}

func TestPutManifestByDigest(t *testing.T) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(alg.String(), func(t *testing.T) {
			e := newMfEnvDefault(t)
			body := e.image("repo", "x", nil)
			d := alg.FromBytes(body)
			r := e.push("repo", d.String(), ocispec.MediaTypeImageManifest, body)
			if r.code != http.StatusCreated {
				t.Fatalf("push: %d %s", r.code, r.body)
			}
			if got := r.hdr.Get("Docker-Content-Digest"); got != d.String() {
				t.Errorf("Docker-Content-Digest %q, want %s", got, d)
			}
			if !strings.HasSuffix(r.hdr.Get("Location"), "/v2/repo/manifests/"+d.String()) {
				t.Errorf("Location %q", r.hdr.Get("Location"))
			}
			if got := e.file(storage.ManifestRevisionLinkPath("repo", d)); string(got) != d.String() {
				t.Errorf("revision link %q", got)
			}
			if !bytes.Equal(e.file(storage.BlobDataPath(d)), body) {
				t.Errorf("blob data differs")
			}
			if e.exists(storage.TagsDir("repo")) {
				t.Errorf("a push by digest made a tag")
			}
			g := e.do(http.MethodGet, "/v2/repo/manifests/"+d.String(), nil, nil)
			if g.code != http.StatusOK || !bytes.Equal(g.body, body) || g.hdr.Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("GET: %d %s", g.code, g.body)
			}

			// The body must hash to the reference.
			other := alg.FromBytes(append(body, ' '))
			wantError(t, e.push("repo", other.String(), ocispec.MediaTypeImageManifest, body), http.StatusBadRequest, CodeDigestInvalid)
		})
	}
}

func TestPutManifestTypes(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "types"
	cfg := e.putBlob(repo, "application/vnd.docker.container.image.v1+json", []byte(`{"docker":true}`))
	layer := e.putBlob(repo, "application/vnd.docker.image.rootfs.diff.tar.gzip", []byte("docker layer"))
	docker := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeDockerManifest,
		"config":        cfg,
		"layers":        []ocispec.Descriptor{layer},
	})
	dd := e.mustPush(repo, "docker", mediaTypeDockerManifest, docker)

	oci := e.image(repo, "oci", func(m *ocispec.Manifest) { m.MediaType = "" })
	od := e.mustPush(repo, "oci", ocispec.MediaTypeImageManifest+"; charset=utf-8", oci)

	list := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeDockerManifestList,
		"manifests": []ocispec.Descriptor{{
			MediaType: mediaTypeDockerManifest, Digest: dd, Size: int64(len(docker)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"},
		}},
	})
	e.mustPush(repo, "list", mediaTypeDockerManifestList, list)

	// An index without mediaType is served as an OCI index.
	index := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"manifests":     []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: od, Size: int64(len(oci))}},
	})
	e.mustPush(repo, "index", ocispec.MediaTypeImageIndex, index)

	for tag, want := range map[string]string{
		"docker": mediaTypeDockerManifest,
		"oci":    ocispec.MediaTypeImageManifest,
		"list":   mediaTypeDockerManifestList,
		"index":  ocispec.MediaTypeImageIndex,
	} {
		g := e.do(http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil, nil)
		if g.code != http.StatusOK || g.hdr.Get("Content-Type") != want {
			t.Errorf("GET %s: %d Content-Type %q, want %q", tag, g.code, g.hdr.Get("Content-Type"), want)
		}
	}
}

func TestPutManifestInvalid(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "bad"
	good := e.image(repo, "g", nil)
	noType := e.image(repo, "g", func(m *ocispec.Manifest) { m.MediaType = "" })
	badDesc := e.image(repo, "g", func(m *ocispec.Manifest) { m.Layers[0].Digest = "sha256:nothex" })
	negSize := e.image(repo, "g", func(m *ocispec.Manifest) { m.Layers[0].Size = -1 })
	badSubject := e.image(repo, "g", func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "md5:abc", Size: 1}
	})
	for _, tc := range []struct {
		name, ref, ct string
		body          []byte
		status        int
		code          string
	}{
		{"no content type", "t", "", good, 400, CodeManifestInvalid},
		{"unknown content type", "t", "application/json", good, 400, CodeManifestInvalid},
		{"schema1 content type", "t", mediaTypeDockerSchema1Signed, good, 400, CodeManifestInvalid},
		{"type disagrees with body", "t", mediaTypeDockerManifest, good, 400, CodeManifestInvalid},
		{"index type for a manifest body", "t", ocispec.MediaTypeImageIndex, good, 400, CodeManifestInvalid},
		{"index type, image body without mediaType", "t", ocispec.MediaTypeImageIndex, noType, 400, CodeManifestInvalid},
		{"docker type without mediaType", "t", mediaTypeDockerManifest, noType, 400, CodeManifestInvalid},
		{"not JSON", "t", ocispec.MediaTypeImageManifest, []byte("{nope"), 400, CodeManifestInvalid},
		{"JSON array", "t", ocispec.MediaTypeImageManifest, []byte("[]"), 400, CodeManifestInvalid},
		{"empty body", "t", ocispec.MediaTypeImageManifest, nil, 400, CodeManifestInvalid},
		{"schemaVersion 1", "t", ocispec.MediaTypeImageManifest,
			[]byte(`{"schemaVersion":1,"mediaType":"` + ocispec.MediaTypeImageManifest + `"}`), 400, CodeManifestInvalid},
		{"no config", "t", ocispec.MediaTypeImageManifest,
			[]byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","layers":[]}`), 400, CodeManifestInvalid},
		{"index without manifests", "t", ocispec.MediaTypeImageIndex,
			[]byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `"}`), 400, CodeManifestInvalid},
		{"layers not a list", "t", ocispec.MediaTypeImageManifest,
			[]byte(`{"schemaVersion":2,"config":{},"layers":"x"}`), 400, CodeManifestInvalid},
		{"invalid layer digest", "t", ocispec.MediaTypeImageManifest, badDesc, 400, CodeManifestInvalid},
		{"negative size", "t", ocispec.MediaTypeImageManifest, negSize, 400, CodeManifestInvalid},
		{"invalid subject digest", "t", ocispec.MediaTypeImageManifest, badSubject, 400, CodeManifestInvalid},
		{"invalid tag", "-dash", ocispec.MediaTypeImageManifest, good, 400, CodeTagInvalid},
		{"tag too long", strings.Repeat("a", 129), ocispec.MediaTypeImageManifest, good, 400, CodeTagInvalid},
		{"invalid digest", "sha256:abc", ocispec.MediaTypeImageManifest, good, 400, CodeDigestInvalid},
		{"unsupported algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", ocispec.MediaTypeImageManifest, good, 400, CodeDigestInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.push(repo, tc.ref, tc.ct, tc.body), tc.status, tc.code)
		})
	}
	if e.exists(storage.TagsDir(repo)) || e.exists(storage.ManifestsDir(repo)) {
		t.Errorf("a refused push left manifests behind")
	}
}

func TestPutManifestBlobUnknown(t *testing.T) {
	e := newMfEnvDefault(t)
	repo := "refs"
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("never pushed"), Size: 12}
	// A blob that exists in the store, but only for another repository.
	elsewhere := e.putBlob("other", ocispec.MediaTypeImageLayerGzip, []byte("other repo's layer"))

	wantMissing := func(t *testing.T, r mfResp, d digest.Digest) {
		t.Helper()
		wantError(t, r, http.StatusBadRequest, CodeManifestBlobUnknown)
		if !bytes.Contains(r.body, []byte(d.String())) {
			t.Errorf("error does not name %s: %s", d, r.body)
		}
	}
	t.Run("layer", func(t *testing.T) {
		body := e.image(repo, "l", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, missing) })
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageManifest, body), missing.Digest)
	})
	t.Run("config", func(t *testing.T) {
		body := e.image(repo, "c", func(m *ocispec.Manifest) { m.Config.Digest = missing.Digest })
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageManifest, body), missing.Digest)
	})
	t.Run("layer of another repository", func(t *testing.T) {
		body := e.image(repo, "o", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, elsewhere) })
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageManifest, body), elsewhere.Digest)
	})
	t.Run("urls on a distributable layer", func(t *testing.T) {
		l := missing
		l.URLs = []string{"https://example.com/layer"}
		body := e.image(repo, "u", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, l) })
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageManifest, body), l.Digest)
	})
	t.Run("non-distributable layer without urls", func(t *testing.T) {
		l := missing
		l.MediaType = ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck // the type under test
		body := e.image(repo, "n", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, l) })
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageManifest, body), l.Digest)
	})
	t.Run("index child", func(t *testing.T) {
		child := e.image(repo, "child", nil) // its blobs exist, the manifest was never pushed
		cd := digest.FromBytes(child)
		index := mustJSON(t, ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: cd, Size: int64(len(child))}},
		})
		wantMissing(t, e.push(repo, "t", ocispec.MediaTypeImageIndex, index), cd)
		e.mustPush(repo, cd.String(), ocispec.MediaTypeImageManifest, child)
		e.mustPush(repo, "t", ocispec.MediaTypeImageIndex, index)
	})
	t.Run("foreign layers with urls", func(t *testing.T) {
		win := missing
		win.MediaType = mediaTypeDockerForeignLayer
		win.URLs = []string{"https://mcr.microsoft.com/layer"}
		nd := missing
		nd.Digest = digest.FromString("nondistributable")
		nd.MediaType = ocispec.MediaTypeImageLayerNonDistributableZstd //nolint:staticcheck // the type under test
		nd.URLs = []string{"https://example.com/nd"}
		body := e.image(repo, "f", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, win, nd) })
		e.mustPush(repo, "foreign", ocispec.MediaTypeImageManifest, body)
	})
	t.Run("every missing digest is listed", func(t *testing.T) {
		second := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("also missing"), Size: 1}
		body := e.image(repo, "m", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, missing, second) })
		r := e.push(repo, "t", ocispec.MediaTypeImageManifest, body)
		wantMissing(t, r, missing.Digest)
		if !bytes.Contains(r.body, []byte(second.Digest.String())) {
			t.Errorf("error does not name the second missing blob: %s", r.body)
		}
	})
	t.Run("subject need not exist", func(t *testing.T) {
		body := e.image(repo, "s", func(m *ocispec.Manifest) {
			m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("future"), Size: 10}
		})
		e.mustPush(repo, "s", ocispec.MediaTypeImageManifest, body)
	})
}

func TestPutManifestSizeLimit(t *testing.T) {
	e := newMfEnvDefault(t)
	// pad builds a manifest of exactly size bytes with a big annotation.
	pad := func(size int) []byte {
		base := e.image("big", "b", func(m *ocispec.Manifest) { m.Annotations = map[string]string{"pad": ""} })
		fill := size - len(base)
		if fill < 0 {
			t.Fatalf("base manifest already %d bytes", len(base))
		}
		return e.image("big", "b", func(m *ocispec.Manifest) { m.Annotations = map[string]string{"pad": strings.Repeat("x", fill)} })
	}
	atLimit := pad(4 << 20)
	if len(atLimit) != 4<<20 {
		t.Fatalf("built %d bytes", len(atLimit))
	}
	e.mustPush("big", "limit", ocispec.MediaTypeImageManifest, atLimit)
	g := e.do(http.MethodGet, "/v2/big/manifests/limit", nil, nil)
	if g.code != http.StatusOK || !bytes.Equal(g.body, atLimit) {
		t.Fatalf("GET 4 MiB manifest: %d", g.code)
	}

	over := pad(4<<20 + 1)
	wantError(t, e.push("big", "over", ocispec.MediaTypeImageManifest, over), http.StatusRequestEntityTooLarge, CodeSizeInvalid)

	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v2/big/manifests/over", io.MultiReader(bytes.NewReader(over)))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize push: %d", res.StatusCode)
	}
	if e.exists(storage.TagDir("big", "over")) {
		t.Errorf("oversize manifest was tagged")
	}
}

func TestGetManifestAccept(t *testing.T) {
	e := newMfEnvDefault(t)
	e.mustPush("acc", "v1", ocispec.MediaTypeImageManifest, e.image("acc", "a", nil))
	dockerAccept := strings.Join([]string{
		mediaTypeDockerManifest, mediaTypeDockerManifestList,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	}, ", ")
	for _, tc := range []struct {
		name   string
		accept []string
		ok     bool
	}{
		{"none", nil, true},
		{"docker's list", []string{dockerAccept}, true},
		{"exact", []string{ocispec.MediaTypeImageManifest}, true},
		{"with parameters", []string{ocispec.MediaTypeImageManifest + "; q=0.5"}, true},
		{"wildcard", []string{mediaTypeDockerManifest + ", */*"}, true},
		{"type wildcard", []string{"application/*"}, true},
		{"several headers", []string{mediaTypeDockerManifest, ocispec.MediaTypeImageManifest}, true},
		{"only docker", []string{mediaTypeDockerManifest + ", " + mediaTypeDockerManifestList}, false},
		{"only index", []string{ocispec.MediaTypeImageIndex}, false},
		{"refused with q=0", []string{ocispec.MediaTypeImageManifest + ";q=0, " + mediaTypeDockerManifest}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req, _ := http.NewRequest(method, e.srv.URL+"/v2/acc/manifests/v1", nil)
				for _, a := range tc.accept {
					req.Header.Add("Accept", a)
				}
				res, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				r := mfResp{code: res.StatusCode, hdr: res.Header, body: b}
				switch {
				case tc.ok && r.code != http.StatusOK:
					t.Errorf("%s: %d %s", method, r.code, r.body)
				case !tc.ok && method == http.MethodGet:
					wantError(t, r, http.StatusNotFound, CodeManifestUnknown)
					if !bytes.Contains(r.body, []byte(ocispec.MediaTypeImageManifest)) {
						t.Errorf("error does not name the stored type: %s", r.body)
					}
				case !tc.ok && r.code != http.StatusNotFound:
					t.Errorf("%s: %d, want 404", method, r.code)
				}
			}
		})
	}
}

func TestGetManifestUnknown(t *testing.T) {
	e := newMfEnvDefault(t)
	e.mustPush("known", "v1", ocispec.MediaTypeImageManifest, e.image("known", "k", nil))
	absent := digest.FromString("absent").String()
	for _, tc := range []struct {
		path, code string
	}{
		{"/v2/unknown/manifests/v1", CodeNameUnknown},
		{"/v2/unknown/manifests/" + absent, CodeNameUnknown},
		{"/v2/known/manifests/v2", CodeManifestUnknown},
		{"/v2/known/manifests/" + absent, CodeManifestUnknown},
	} {
		wantError(t, e.do(http.MethodGet, tc.path, nil, nil), http.StatusNotFound, tc.code)
		h := e.do(http.MethodHead, tc.path, nil, nil)
		if h.code != http.StatusNotFound || len(h.body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", tc.path, h.code, len(h.body))
		}
	}
	wantError(t, e.do(http.MethodGet, "/v2/known/manifests/sha256:zz", nil, nil), http.StatusBadRequest, CodeDigestInvalid)

	// A tag whose revision was deleted by another program is unknown.
	d := digest.Digest(e.file(storage.TagCurrentLinkPath("known", "v1")))
	if err := e.fs.Delete(context.Background(), storage.ManifestRevisionDir("known", d)); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(http.MethodGet, "/v2/known/manifests/v1", nil, nil), http.StatusNotFound, CodeManifestUnknown)
}

func TestTagRepush(t *testing.T) {
	e := newMfEnvDefault(t)
	a := e.image("re", "a", nil)
	b := e.image("re", "b", nil)
	da := e.mustPush("re", "latest", ocispec.MediaTypeImageManifest, a)
	db := e.mustPush("re", "latest", ocispec.MediaTypeImageManifest, b)
	cur := e.file(storage.TagCurrentLinkPath("re", "latest"))
	if string(cur) != db.String() || len(cur) != 71 {
		t.Fatalf("current/link %q (%d bytes), want %s", cur, len(cur), db)
	}
	for _, d := range []digest.Digest{da, db} {
		if got := e.file(storage.TagIndexEntryLinkPath("re", "latest", d)); string(got) != d.String() {
			t.Errorf("index entry for %s: %q", d, got)
		}
	}
	g := e.do(http.MethodGet, "/v2/re/manifests/latest", nil, nil)
	if !bytes.Equal(g.body, b) {
		t.Errorf("tag serves the old manifest")
	}
	// The old revision stays pullable by digest.
	if g := e.do(http.MethodGet, "/v2/re/manifests/"+da.String(), nil, nil); g.code != http.StatusOK {
		t.Errorf("old revision: %d", g.code)
	}
	// Pushing the same bytes again is fine and changes nothing.
	if d := e.mustPush("re", "latest", ocispec.MediaTypeImageManifest, b); d != db {
		t.Errorf("re-push digest %s", d)
	}
}

func TestDeleteManifestByDigest(t *testing.T) {
	e := newMfEnvDefault(t)
	a := e.image("del", "a", nil)
	b := e.image("del", "b", nil)
	da := e.mustPush("del", "one", ocispec.MediaTypeImageManifest, a)
	e.mustPush("del", "two", ocispec.MediaTypeImageManifest, a)
	e.mustPush("del", "three", ocispec.MediaTypeImageManifest, a)
	db := e.mustPush("del", "three", ocispec.MediaTypeImageManifest, b) // three once pointed at a

	r := e.do(http.MethodDelete, "/v2/del/manifests/"+da.String(), nil, nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	for _, p := range []string{
		storage.ManifestRevisionDir("del", da),
		storage.TagDir("del", "one"),
		storage.TagDir("del", "two"),
		path2dir(storage.TagIndexEntryLinkPath("del", "three", da)),
	} {
		if e.exists(p) {
			t.Errorf("%s survived the delete", p)
		}
	}
	if got := e.file(storage.TagCurrentLinkPath("del", "three")); string(got) != db.String() {
		t.Errorf("tag three changed: %q", got)
	}
	if !e.exists(storage.TagIndexEntryLinkPath("del", "three", db)) {
		t.Errorf("tag three lost its own index entry")
	}
	if !e.exists(storage.BlobDataPath(da)) {
		t.Errorf("blob data deleted; that is garbage collection's job")
	}
	for _, ref := range []string{"one", "two", da.String()} {
		wantError(t, e.do(http.MethodGet, "/v2/del/manifests/"+ref, nil, nil), http.StatusNotFound, CodeManifestUnknown)
	}
	if g := e.do(http.MethodGet, "/v2/del/manifests/three", nil, nil); g.code != http.StatusOK {
		t.Errorf("three: %d", g.code)
	}
	wantError(t, e.do(http.MethodDelete, "/v2/del/manifests/"+da.String(), nil, nil), http.StatusNotFound, CodeManifestUnknown)
	wantError(t, e.do(http.MethodDelete, "/v2/nope/manifests/"+da.String(), nil, nil), http.StatusNotFound, CodeNameUnknown)
	wantError(t, e.do(http.MethodDelete, "/v2/del/manifests/sha256:12", nil, nil), http.StatusBadRequest, CodeDigestInvalid)
}

func path2dir(p string) string { return p[:strings.LastIndexByte(p, '/')] }

func TestDeleteTag(t *testing.T) {
	e := newMfEnvDefault(t)
	d := e.mustPush("dt", "v1", ocispec.MediaTypeImageManifest, e.image("dt", "a", nil))
	e.mustPush("dt", "v2", ocispec.MediaTypeImageManifest, e.image("dt", "a", nil))
	r := e.do(http.MethodDelete, "/v2/dt/manifests/v1", nil, nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("delete tag: %d %s", r.code, r.body)
	}
	if e.exists(storage.TagDir("dt", "v1")) {
		t.Errorf("tag folder survived")
	}
	wantError(t, e.do(http.MethodGet, "/v2/dt/manifests/v1", nil, nil), http.StatusNotFound, CodeManifestUnknown)
	for _, ref := range []string{"v2", d.String()} {
		if g := e.do(http.MethodGet, "/v2/dt/manifests/"+ref, nil, nil); g.code != http.StatusOK {
			t.Errorf("GET %s after deleting v1: %d", ref, g.code)
		}
	}
	wantError(t, e.do(http.MethodDelete, "/v2/dt/manifests/v1", nil, nil), http.StatusNotFound, CodeManifestUnknown)
	wantError(t, e.do(http.MethodDelete, "/v2/dt/manifests/.bad", nil, nil), http.StatusBadRequest, CodeTagInvalid)
}

func TestDeleteManifestDisabled(t *testing.T) {
	e := newMfEnv(t, Options{})
	d := e.mustPush("ro", "v1", ocispec.MediaTypeImageManifest, e.image("ro", "a", nil))
	for _, ref := range []string{"v1", d.String()} {
		wantError(t, e.do(http.MethodDelete, "/v2/ro/manifests/"+ref, nil, nil), http.StatusMethodNotAllowed, CodeUnsupported)
	}
	if !e.exists(storage.TagCurrentLinkPath("ro", "v1")) {
		t.Errorf("refused delete removed the tag")
	}
}

func TestConcurrentTagPush(t *testing.T) {
	e := newMfEnvDefault(t)
	const n = 20
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = e.image("race", fmt.Sprint(i), nil)
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v2/race/manifests/hot", bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		}()
	}
	wg.Wait()
	digests := map[string]bool{}
	for i, b := range bodies {
		if codes[i] != http.StatusCreated {
			t.Errorf("push %d: %d", i, codes[i])
		}
		d := digest.FromBytes(b)
		digests[d.String()] = true
		if got := e.file(storage.TagIndexEntryLinkPath("race", "hot", d)); string(got) != d.String() {
			t.Errorf("index entry for push %d: %q", i, got)
		}
	}
	cur := e.file(storage.TagCurrentLinkPath("race", "hot"))
	if !digests[string(cur)] || len(cur) != 71 {
		t.Errorf("current/link %q is none of the pushed manifests", cur)
	}
	g := e.do(http.MethodGet, "/v2/race/manifests/hot", nil, nil)
	if g.code != http.StatusOK || g.hdr.Get("Docker-Content-Digest") != string(cur) {
		t.Errorf("GET hot: %d %s, current %s", g.code, g.hdr.Get("Docker-Content-Digest"), cur)
	}
}
