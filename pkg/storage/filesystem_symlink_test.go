package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// Every method of the filesystem driver refuses a path that is, or goes
// through, a symbolic link planted in the root, with ErrSymlink, and
// nothing outside the root is read, written or deleted; Walk reports
// the links and goes below none. Deleting a link itself removes the
// link only. Both ways of resolving paths are checked: openat2(2) and,
// for kernels without it, one component at a time.
func TestFilesystemNeverFollowsSymlinks(t *testing.T) {
	t.Run("openat2", testNeverFollows)
	t.Run("per-component", func(t *testing.T) {
		storage.WithoutOpenat2(t)
		testNeverFollows(t)
	})
}

func testNeverFollows(t *testing.T) {
	d, root := newFS(t)
	s := testtools.PlantSymlinks(t, root)
	ctx := t.Context()
	v2 := storage.Root
	evil := v2 + "/repositories/evil"
	uploads := v2 + "/repositories/good/app/_uploads"
	ee := v2 + "/blobs/sha256/ee"
	secretData := storage.BlobDataPath(digest.Digest(s.SecretBlob))
	// A link that stays inside the root is not followed either.
	if err := os.Symlink("good", filepath.Join(root, "docker/registry/v2/repositories/alias")); err != nil {
		t.Fatal(err)
	}
	alias := v2 + "/repositories/alias"
	mhex := digest.Digest(s.Manifest).Encoded()

	files := []string{ // below a link, or a link to a file
		evil + "/app/_manifests/revisions/sha256/" + mhex + "/link",
		uploads + "/" + testtools.SymlinkUploadGood + "/startedat",
		storage.BlobDataPath(digest.Digest(s.OutsideBlob)),
		secretData,
		alias + "/app/_layers/sha256/" + mhex + "/link",
	}
	folders := []string{evil, evil + "/app", uploads, ee, alias}
	wantSymlink := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrSymlink) {
			t.Errorf("%s: %v, want ErrSymlink", what, err)
		}
	}

	// Reads.
	for _, p := range files {
		b, err := d.GetContent(ctx, p)
		wantSymlink("GetContent "+p, err)
		if strings.Contains(string(b), s.Secret) {
			t.Errorf("GetContent %s read the outside file", p)
		}
		_, err = d.Reader(ctx, p, 0)
		wantSymlink("Reader "+p, err)
		_, _, err = d.Open(ctx, p)
		wantSymlink("Open "+p, err)
		_, err = d.Stat(ctx, p)
		wantSymlink("Stat "+p, err)
	}
	for _, p := range folders {
		_, err := d.List(ctx, p)
		wantSymlink("List "+p, err)
		_, err = d.Stat(ctx, p)
		wantSymlink("Stat "+p, err)
		wantSymlink("Walk "+p, d.Walk(ctx, p, func(storage.FileInfo) error { return nil }))
	}
	// A listing names a link, as it is there.
	if l, err := d.List(ctx, v2+"/repositories"); err != nil || !slices.Contains(l, evil) {
		t.Errorf("List(repositories) = %v, %v; want evil in it", l, err)
	}
	var links []string
	err := d.Walk(ctx, "/", func(fi storage.FileInfo) error {
		if fi.Symlink {
			if fi.IsDir || fi.Size != 0 {
				t.Errorf("Walk: link %+v", fi)
			}
			links = append(links, fi.Path)
		}
		for _, l := range append(slices.Clone(s.Links), alias) {
			if strings.HasPrefix(fi.Path, l+"/") {
				t.Errorf("Walk went below link %s: %s", l, fi.Path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(s.Links), alias); !slices.Equal(links, slices.Sorted(slices.Values(want))) {
		t.Errorf("Walk reported links %v, want %v", links, want)
	}

	// Writes through a link.
	for _, p := range []string{evil + "/app/_manifests/tags/x/current/link", uploads + "/new/startedat", ee + "/" + strings.Repeat("e", 64) + "/data", alias + "/app/new"} {
		wantSymlink("PutContent "+p, d.PutContent(ctx, p, []byte("x")))
		_, err := d.Writer(ctx, p, false)
		wantSymlink("Writer "+p, err)
		wantSymlink("CreateExclusive "+p, d.CreateExclusive(ctx, p, []byte("x")))
		if err := d.PutContent(ctx, "/inside", []byte("x")); err != nil {
			t.Fatal(err)
		}
		wantSymlink("Move to "+p, d.Move(ctx, "/inside", p))
	}
	_, err = d.Writer(ctx, uploads+"/"+testtools.SymlinkUploadGood+"/data", true)
	wantSymlink("Writer(append) below a link", err)
	wantSymlink("Writer over a link", func() error { _, err := d.Writer(ctx, secretData, false); return err }())
	for _, p := range files {
		wantSymlink("Move from "+p, d.Move(ctx, p, "/moved"))
	}

	// Deletes below a link.
	for _, p := range files[:3] {
		wantSymlink("Delete "+p, d.Delete(ctx, p))
	}
	wantSymlink("Delete below evil", d.Delete(ctx, evil+"/app"))
	wantSymlink("DeleteUnits below links", d.DeleteUnits(ctx, []storage.Unit{
		{Path: storage.BlobDir(digest.Digest(s.OutsideBlob)), Files: []string{storage.BlobDataPath(digest.Digest(s.OutsideBlob))}},
	}))
	wantSymlink("DeleteUnits below evil", d.DeleteUnits(ctx, []storage.Unit{
		{Path: evil + "/app/_manifests/revisions/sha256/" + mhex, Files: []string{files[0]}},
	}))
	s.CheckOutside(t)
	s.CheckLinks(t)

	// Deleting a link removes the link, never what it points at.
	if err := d.Delete(ctx, evil); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUnits(ctx, []storage.Unit{
		{Path: ee, Files: []string{ee + "/x/data"}},
		{Path: secretData, Files: []string{secretData}},
		{Path: uploads, Files: []string{uploads + "/u/data"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range s.Links {
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(l))); !os.IsNotExist(err) {
			t.Errorf("link %s not deleted: %v", l, err)
		}
	}
	s.CheckOutside(t)
}
