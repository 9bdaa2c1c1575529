package gc

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The cases follow Distribution v3.1.2's manifestStore.Get and each
// type's References(): what it lists, and where it fails.
func TestParseManifest(t *testing.T) {
	t.Parallel()
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	desc := func(d digest.Digest) string { return `{"mediaType":"x","digest":"` + d.String() + `","size":1}` }
	for _, tc := range []struct {
		name    string
		body    string
		refs    []digest.Digest // nil with fails
		subject digest.Digest
		fails   bool
	}{
		{name: "OCI image", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(a) + `,"layers":[` + desc(b) + `,` + desc(c) + `]}`,
			refs: []digest.Digest{a, b, c}},
		{name: "OCI image without media type", body: `{"schemaVersion":2,"config":` + desc(a) + `,"layers":[` + desc(b) + `]}`,
			refs: []digest.Digest{a, b}},
		{name: "OCI artefact with subject", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(a) + `,"layers":[],"subject":` + desc(c) + `}`,
			refs: []digest.Digest{a}, subject: c},
		{name: "subject that does not decode is none", body: `{"schemaVersion":2,"config":` + desc(a) + `,"layers":[],"subject":"nope"}`,
			refs: []digest.Digest{a}},
		{name: "subject with an invalid digest is none", body: `{"schemaVersion":2,"config":` + desc(a) + `,"subject":{"digest":"sha256:xyz"}}`,
			refs: []digest.Digest{a}},
		{name: "Docker schema 2", body: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":` + desc(a) + `,"layers":[` + desc(b) + `]}`,
			refs: []digest.Digest{a, b}},
		{name: "OCI index", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + desc(a) + `,` + desc(b) + `]}`,
			refs: []digest.Digest{a, b}},
		{name: "index without media type", body: `{"schemaVersion":2,"manifests":[` + desc(a) + `]}`,
			refs: []digest.Digest{a}},
		{name: "empty manifests array is an index", body: `{"schemaVersion":2,"manifests":[],"config":` + desc(a) + `}`,
			refs: []digest.Digest{}},
		{name: "null manifests is an image", body: `{"schemaVersion":2,"manifests":null,"config":` + desc(a) + `}`,
			refs: []digest.Digest{a}},
		{name: "Docker manifest list", body: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"digest":"` + a.String() + `","platform":{"architecture":"amd64","os":"linux"}}]}`,
			refs: []digest.Digest{a}},
		{name: "Docker manifest list with a bad platform", fails: true,
			body: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"digest":"` + a.String() + `","platform":{"os":7}}]}`},
		{name: "unknown fields are ignored", body: `{"schemaVersion":2,"config":` + desc(a) + `,"x":{"y":[1]}}`,
			refs: []digest.Digest{a}},
		{name: "descriptor field of the wrong type", fails: true, body: `{"schemaVersion":2,"config":{"digest":"` + a.String() + `","size":"big"}}`},
		{name: "bad base64 data", fails: true, body: `{"schemaVersion":2,"config":{"digest":"` + a.String() + `","data":"!!"}}`},
		{name: "OCI media type mismatch", fails: true, body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(a) + `,"x":1,"mediaType":"text/plain"}`},
		{name: "unknown media type", fails: true, body: `{"schemaVersion":2,"mediaType":"text/plain","config":` + desc(a) + `}`},
		{name: "schema 1", fails: true, body: `{"schemaVersion":1,"fsLayers":[{"blobSum":"` + a.String() + `"}]}`},
		{name: "not JSON", fails: true, body: `{"schemaVersion":2,`},
		{name: "index that fails to decode", fails: true, body: `{"schemaVersion":2,"manifests":{"a":1}}`},
		{name: "field names match case-insensitively, as in Go", body: `{"SchemaVersion":2,"CONFIG":` + desc(a) + `}`,
			refs: []digest.Digest{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := parseManifest([]byte(tc.body))
			if (info.err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v", info.err, tc.fails)
			}
			if tc.fails {
				// Kept with every digest written in it.
				for _, d := range []digest.Digest{a, b, c} {
					if strings.Contains(tc.body, d.String()) && !slices.Contains(info.refs, d) {
						t.Errorf("refs %v lack %s", info.refs, d)
					}
				}
				return
			}
			if !slices.Equal(info.refs, tc.refs) {
				t.Errorf("refs = %v, want %v", info.refs, tc.refs)
			}
			if info.subject != tc.subject {
				t.Errorf("subject = %q, want %q", info.subject, tc.subject)
			}
		})
	}
}

func TestParseManifestTooLarge(t *testing.T) {
	t.Parallel()
	body := `{"schemaVersion":2,"config":{"digest":"` + digest.FromString("a").String() + `"},"pad":"` + strings.Repeat("x", maxManifestSize) + `"}`
	if info := parseManifest([]byte(body)); info.err == nil || len(info.refs) != 1 {
		t.Errorf("a manifest over 4 MiB: err = %v, refs = %v; want an error and the digest it names", info.err, info.refs)
	}
}

func TestRepoOrder(t *testing.T) {
	t.Parallel()
	names := []string{"a-b", "a/b", "a", "a.b", "a/0", "a/b/c", "b", "a0"}
	order := func(driver string) []string {
		var rs []*repo
		for _, n := range names {
			rs = append(rs, &repo{name: n})
		}
		sortRepos(rs, driver == "s3")
		var out []string
		for _, r := range rs {
			out = append(out, r.name)
		}
		return out
	}
	// The filesystem walk: each folder's entries sorted by name, a
	// folder's whole subtree before its next sibling; "_manifests"
	// sorts after digits and before letters.
	if got, want := order("filesystem"), []string{"a/0", "a", "a/b", "a/b/c", "a-b", "a.b", "a0", "b"}; !slices.Equal(got, want) {
		t.Errorf("filesystem order %v, want %v", got, want)
	}
	// S3 lists keys byte by byte: "a-b/" < "a.b/" < "a/" < "a0/".
	if got, want := order("s3"), []string{"a-b", "a.b", "a/0", "a", "a/b", "a/b/c", "a0", "b"}; !slices.Equal(got, want) {
		t.Errorf("s3 order %v, want %v", got, want)
	}
}

func TestValidRepoName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"a": true, "a/b": true, "a-b": true, "a__b": true, "a.b/c_d": true, "localhost:5000/a": true, "Host.Example/a": true,
		"A": false, "a/B": false, "a_": false, "-a": false, "a//b": false, "a:b": false, strings.Repeat("a", 256): false,
	} {
		if got := validRepoName(name); got != want {
			t.Errorf("validRepoName(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzReferences checks the one-pass decode against the exact one.
func FuzzReferences(f *testing.F) {
	a := digest.FromString("a").String()
	for _, seed := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"` + a + `"},"layers":[{"digest":"` + a + `","size":1}]}`,
		`{"schemaVersion":2,"config":{"digest":"` + a + `"},"subject":{"digest":"` + a + `"}}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"` + a + `"},"layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"digest":"` + a + `","platform":{"os":"linux","features":["x"]}}]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"` + a + `","platform":{"os":"linux"}}],"annotations":{"k":"v"}}`,
		`{"schemaVersion":2,"manifests":[],"config":{"digest":"` + a + `"}}`,
		`{"schemaVersion":2,"manifests":null,"layers":null}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"config":5}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":5}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"platform":{"features":5}}]}`,
		`{"schemaVersion":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, subject, err := references(b)
		erefs, esubject, eerr := exactReferences(b)
		if (err == nil) != (eerr == nil) || !slices.Equal(refs, erefs) || string(subject) != string(esubject) {
			t.Errorf("one pass: %v %s %v; exact: %v %s %v", refs, subject, err, erefs, esubject, eerr)
		}
	})
}

// makeDigest accepts exactly what digest.Parse does.
func TestMakeDigest(t *testing.T) {
	t.Parallel()
	hex64 := strings.Repeat("ab", 32)
	for _, s := range []string{
		"sha256:" + hex64, "sha256:" + strings.ToUpper(hex64), "sha256:" + hex64[1:], "sha256:" + hex64 + "0", "sha256:" + hex64 + "\n",
		"sha512:" + hex64 + hex64, "sha384:" + hex64[:96-64] + hex64, "sha384:" + hex64, "md5:" + hex64[:32], "SHA256:" + hex64,
		"sha256:" + hex64[:63] + "g", ":" + hex64, "sha256:", "sha256",
	} {
		alg, hex, _ := strings.Cut(s, ":")
		d, ok := makeDigest(alg, hex)
		_, err := digest.Parse(s)
		if ok != (err == nil) || (ok && d.String() != s) {
			t.Errorf("makeDigest(%q) = %q, %v; digest.Parse: %v", s, d, ok, err)
		}
	}
}
