package testtools

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Symlinks is a filesystem storage root with symbolic links planted at
// every depth of its Distribution tree, each to a folder or file outside
// the root that holds what looks like registry data, old enough to
// purge. A program that follows any of the links reads, copies, writes
// or deletes Outside.
//
//	repositories/evil              -> Outside/repo: repository evil/app, with an
//	                                  untagged manifest, a layer link and an old upload
//	repositories/good/app/_uploads -> Outside/uploads: an old upload
//	blobs/sha256/ee                -> Outside/blobs: blob ee…, nothing references it
//	blobs/sha256/ab/ab…/data       -> Outside/secret: blob ab…'s data
//
// The tree inside the root also holds the manifest that evil/app's
// revision names (blob Manifest, referenced by nothing inside the root).
type Symlinks struct {
	Root, Outside string
	// Links are the driver paths of the links, sorted.
	Links []string
	// Manifest is the digest of the manifest blob inside the root;
	// SecretBlob and OutsideBlob are the digests of the blobs whose
	// data (the file or its folder) is outside.
	Manifest, SecretBlob, OutsideBlob string
	// Secret is the content of Outside/secret.
	Secret string

	before map[string]string
}

// Upload ids of the planted uploads.
const (
	SymlinkUploadEvil = "0a0a0a0a-0000-4000-8000-000000000001"
	SymlinkUploadGood = "0a0a0a0a-0000-4000-8000-000000000002"
)

// PlantSymlinks plants the links in root (made when missing). Call
// CheckOutside when done.
func PlantSymlinks(t testing.TB, root string) *Symlinks {
	t.Helper()
	s := &Symlinks{Root: root, Outside: t.TempDir(), Secret: "outside secret, not a blob"}
	v2 := filepath.Join(root, "docker", "registry", "v2")
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, rel string) {
		t.Helper()
		p := filepath.Join(v2, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		s.Links = append(s.Links, "/docker/registry/v2/"+rel)
	}

	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("c", 64) + `","size":2},"layers":[]}`
	sum := sha256.Sum256([]byte(manifest))
	mhex := hex.EncodeToString(sum[:])
	s.Manifest = "sha256:" + mhex
	write(filepath.Join(v2, "blobs", "sha256", mhex[:2], mhex, "data"), manifest)

	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	upload := func(dir string) {
		write(filepath.Join(dir, "startedat"), old)
		write(filepath.Join(dir, "data"), "upload bytes")
	}
	repo := filepath.Join(s.Outside, "repo", "app")
	write(filepath.Join(repo, "_manifests", "revisions", "sha256", mhex, "link"), s.Manifest)
	lhex := strings.Repeat("d", 64)
	write(filepath.Join(repo, "_layers", "sha256", lhex, "link"), "sha256:"+lhex)
	upload(filepath.Join(repo, "_uploads", SymlinkUploadEvil))
	upload(filepath.Join(s.Outside, "uploads", SymlinkUploadGood))
	ohex := "ee" + strings.Repeat("e", 62)
	s.OutsideBlob = "sha256:" + ohex
	write(filepath.Join(s.Outside, "blobs", ohex, "data"), "a blob outside the root")
	shex := "ab" + strings.Repeat("0", 62)
	s.SecretBlob = "sha256:" + shex
	write(filepath.Join(s.Outside, "secret"), s.Secret)

	link(filepath.Join(s.Outside, "repo"), "repositories/evil")
	// A repository inside the root, so the link part-way down its path
	// is the only odd thing about it.
	write(filepath.Join(v2, "repositories", "good", "app", "_layers", "sha256", mhex, "link"), s.Manifest)
	link(filepath.Join(s.Outside, "uploads"), "repositories/good/app/_uploads")
	link(filepath.Join(s.Outside, "blobs"), "blobs/sha256/ee")
	link(filepath.Join(s.Outside, "secret"), "blobs/sha256/ab/"+shex+"/data")
	slices.Sort(s.Links)

	// Old enough for any purge, folders too.
	then := time.Now().Add(-30 * 24 * time.Hour)
	filepath.WalkDir(s.Outside, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			os.Chtimes(p, then, then)
		}
		return nil
	})
	s.before = snapshotTree(t, s.Outside)
	return s
}

// CheckOutside fails t when anything outside the root changed: a file
// or folder gone, added or rewritten.
func (s *Symlinks) CheckOutside(t testing.TB) {
	t.Helper()
	after := snapshotTree(t, s.Outside)
	if !maps.Equal(s.before, after) {
		t.Errorf("outside the root, before:\n%s\nafter:\n%s", treeString(s.before), treeString(after))
	}
}

// CheckLinks fails t when a planted link is gone or changed.
func (s *Symlinks) CheckLinks(t testing.TB) {
	t.Helper()
	for _, l := range s.Links {
		if _, err := os.Readlink(filepath.Join(s.Root, filepath.FromSlash(l))); err != nil {
			t.Errorf("planted link %s: %v", l, err)
		}
	}
}

func snapshotTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func treeString(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString("  " + k + "\n")
	}
	return b.String()
}
