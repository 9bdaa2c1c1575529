package storage_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
	"regctl/pkg/storage/drivertest"
)

func newFS(t testing.TB) (*storage.Filesystem, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

func TestFilesystemDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) storage.Driver {
		d, _ := newFS(t)
		return d
	})
}

func TestNewFilesystem(t *testing.T) {
	if _, err := storage.NewFilesystem(""); err == nil {
		t.Error("empty root accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.NewFilesystem(file); err == nil {
		t.Error("a file accepted as root")
	}
	// A missing root is made on the first write, not before.
	d, root := newFS(t)
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("root made before any write: %v", err)
	}
	if _, err := d.Stat(t.Context(), "/"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(/) of a missing root: %v", err)
	}
	if err := d.PutContent(t.Context(), "/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || string(b) != "x" {
		t.Errorf("root/f = %q, %v", b, err)
	}
}

// No path reaches outside the root, whatever the method.
func TestFilesystemRejectsEscapes(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../secret", "/../secret", "/a/../../secret", "/..", "secret", "/a/..", "/x/.regctl-tmp-1"} {
		if err := d.PutContent(ctx, p, []byte("x")); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("PutContent(%q): %v", p, err)
		}
		if _, err := d.GetContent(ctx, p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("GetContent(%q): %v", p, err)
		}
		if err := d.Delete(ctx, p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Delete(%q): %v", p, err)
		}
		if err := d.Move(ctx, p, "/stolen"); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Move(%q): %v", p, err)
		}
	}
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"secret"}) {
		t.Errorf("parent of root holds %v, want only secret", names)
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "secret")); string(b) != "s" {
		t.Errorf("secret changed: %q", b)
	}
}

// The tree is Distribution's, byte for byte: rootDir + driver path, with
// 0755 folders and 0644 files whatever the umask.
func TestFilesystemOnDiskLayout(t *testing.T) {
	old := syscall.Umask(0o077) // stricter than any default
	defer syscall.Umask(old)
	d, root := newFS(t)
	ctx := t.Context()
	blob := []byte("layer bytes")
	dg := digest.FromBytes(blob)
	hex := dg.Encoded()
	const repo = "group/app"

	// An upload as the registry does it: data in place, then moved.
	w, err := d.Writer(ctx, storage.UploadDataPath(repo, "u1"), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, storage.UploadDataPath(repo, "u1"), storage.BlobDataPath(dg)); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, storage.LayerLinkPath(repo, dg), []byte(dg)); err != nil {
		t.Fatal(err)
	}

	v2 := filepath.Join(root, "docker", "registry", "v2")
	files := map[string]string{
		filepath.Join(v2, "blobs", "sha256", hex[:2], hex, "data"):                          string(blob),
		filepath.Join(v2, "repositories", "group", "app", "_layers", "sha256", hex, "link"): dg.String(),
	}
	for f, want := range files {
		b, err := os.ReadFile(f)
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", f, b, err, want)
		}
		if st, err := os.Stat(f); err == nil && st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %04o, want 0644", f, st.Mode().Perm())
		}
	}
	err = filepath.WalkDir(filepath.Join(root, "docker"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if st, _ := e.Info(); e.IsDir() && st.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %04o, want 0755", p, st.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The upload folder was pruned once its data moved away.
	if _, err := os.Stat(filepath.Join(v2, "repositories", "group", "app", "_uploads")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("_uploads left behind: %v", err)
	}

	// And a tree Distribution wrote reads back through the driver.
	tagLink := filepath.Join(v2, "repositories", "group", "app", "_manifests", "tags", "v1", "current", "link")
	if err := os.MkdirAll(filepath.Dir(tagLink), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tagLink, []byte(dg), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, storage.TagCurrentLinkPath(repo, "v1"))
	if err != nil || string(got) != dg.String() {
		t.Errorf("tag link = %q, %v", got, err)
	}
	tags, err := d.List(ctx, storage.TagsDir(repo))
	if err != nil || !slices.Equal(tags, []string{storage.TagDir(repo, "v1")}) {
		t.Errorf("tags = %q, %v", tags, err)
	}
}

func TestFilesystemPrunesEmptyParents(t *testing.T) {
	d, root := newFS(t)
	ctx := t.Context()
	for _, p := range []string{"/a/b/c/f", "/a/x", "/m/src/f", "/w/up/data"} {
		if err := d.PutContent(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, rel))
		return err == nil
	}
	if err := d.Delete(ctx, "/a/b/c/f"); err != nil {
		t.Fatal(err)
	}
	if exists("a/b") || !exists("a/x") {
		t.Errorf("after deleting /a/b/c/f: a/b exists %v, a/x exists %v", exists("a/b"), exists("a/x"))
	}
	if err := d.Move(ctx, "/m/src/f", "/m2/f"); err != nil {
		t.Fatal(err)
	}
	if exists("m") {
		t.Error("Move left its empty source folder")
	}
	w, err := d.Writer(ctx, "/w/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if exists("w") {
		t.Error("Cancel left an empty folder")
	}
	for _, p := range []string{"/a/x", "/m2/f"} {
		if err := d.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// The root stays, empty.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Errorf("root: %d entries, %v; want an empty root", len(entries), err)
	}
	if _, err := d.List(ctx, "/"); err != nil {
		t.Errorf("List(/) of an empty root: %v", err)
	}
}

// Close without Commit keeps the bytes at the final path: that is where
// Distribution looks for upload data.
func TestFilesystemWriterWritesInPlace(t *testing.T) {
	d, root := newFS(t)
	w, err := d.Writer(t.Context(), "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("chunk")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "up", "data")); err != nil || string(b) != "chunk" {
		t.Errorf("data = %q, %v", b, err)
	}
}

func TestFilesystemHidesAndCleansTemps(t *testing.T) {
	d, root := newFS(t)
	ctx := t.Context()
	if err := d.PutContent(ctx, "/d/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A temporary file a crash left behind is not part of the tree.
	if err := os.WriteFile(filepath.Join(root, "d", ".regctl-tmp-123"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := d.List(ctx, "/d")
	if err != nil || !slices.Equal(got, []string{"/d/f"}) {
		t.Errorf("List = %q, %v", got, err)
	}
	var walked []string
	if err := d.Walk(ctx, "/", func(fi storage.FileInfo) error {
		walked = append(walked, fi.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{"/d", "/d/f"}) {
		t.Errorf("Walk = %q", walked)
	}
	// A put that fails (a file cannot replace a non-empty folder) keeps
	// the old content and leaves no temporary file.
	if err := d.PutContent(ctx, "/d", []byte("x")); err == nil {
		t.Fatal("PutContent over a folder succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "d"))
	if len(entries) != 2 { // f and the crash leftover
		t.Errorf("folder holds %d entries, want 2", len(entries))
	}
}

func TestFilesystemOpenReturnsOSFile(t *testing.T) {
	d, _ := newFS(t)
	if err := d.PutContent(t.Context(), "/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Open(t.Context(), "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*os.File); !ok {
		t.Errorf("Open returned %T, want *os.File (sendfile)", f)
	}
	r, err := d.Reader(t.Context(), "/f", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Reader returned %T, want *os.File", r)
	}
}

// The driver holds its root open; a root deleted and made anew while it
// runs (by an operator, or by a test) is the one used from then on.
func TestFilesystemRootRemade(t *testing.T) {
	d, root := newFS(t)
	ctx := t.Context()
	if err := d.PutContent(ctx, "/a/f", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetContent(ctx, "/a/f"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("read from a deleted root: %v", err)
	}
	if err := d.PutContent(ctx, "/a/f", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a", "f")); err != nil || string(b) != "new" {
		t.Errorf("root/a/f = %q, %v", b, err)
	}
	// Made anew by someone else.
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "b", "g"), []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := d.GetContent(ctx, "/b/g"); err != nil || string(b) != "theirs" {
		t.Errorf("read from the new root: %q, %v", b, err)
	}
}
