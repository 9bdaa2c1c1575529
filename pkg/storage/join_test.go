package storage

import (
	"path"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// join must be path.Join, for any parts.
func FuzzJoin(f *testing.F) {
	for _, c := range [][3]string{
		{"/docker/registry/v2", "repositories", "library/ubuntu"}, {"/", "a", "b"}, {"", "", ""},
		{"/a/", "b", "c"}, {"a", "../b", "c"}, {"/a", "./b", "c/"}, {"/a", "b//c", "d"}, {"//a", "b", ".."},
		{"a", "", "b"}, {".", "a", "."}, {"/..", "a", "b"},
	} {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, elems := range [][]string{{a}, {a, b}, {a, b, c}, {Root, a, b, c}} {
			if got, want := join(elems...), path.Join(elems...); got != want {
				t.Errorf("join(%q) = %q, path.Join gives %q", elems, got, want)
			}
		}
	})
}

// The layout functions that build one path in one join must give what
// nesting the folder functions gave.
func FuzzFlatLayoutPaths(f *testing.F) {
	f.Add("library/ubuntu", "latest", "sha256", strings.Repeat("ab", 32))
	f.Add("a/../b", "..", "sha512", "..")
	f.Add("", "", "x", "/a")
	f.Add("a/", "/t/", "s", "b//c")
	f.Fuzz(func(t *testing.T, name, tag, alg, enc string) {
		if strings.Contains(alg, ":") || len(enc) < 2 {
			return // not a digest the functions can be given
		}
		d := digest.Digest(alg + ":" + enc)
		hex := d.Encoded()
		repo := path.Join(path.Join(Root, "repositories"), name)
		manifests := path.Join(repo, "_manifests")
		for _, c := range []struct{ got, want string }{
			{BlobDataPath(d), path.Join(path.Join(Root, "blobs", d.Algorithm().String(), hex[:2], hex), "data")},
			{LayerLinkPath(name, d), path.Join(repo, "_layers", d.Algorithm().String(), d.Encoded(), "link")},
			{ManifestRevisionLinkPath(name, d), path.Join(path.Join(manifests, "revisions", d.Algorithm().String(), d.Encoded()), "link")},
			{TagCurrentLinkPath(name, tag), path.Join(path.Join(path.Join(manifests, "tags"), tag), "current", "link")},
		} {
			if c.got != c.want {
				t.Errorf("name %q tag %q digest %q: got %q, want %q", name, tag, d, c.got, c.want)
			}
		}
	})
}
