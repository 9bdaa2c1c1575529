package storage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/storage"
)

// DeleteUnits removes what Delete would for each unit, and prunes the
// folders left empty, whatever else a unit's folder holds.
func TestFilesystemDeleteUnits(t *testing.T) {
	d, root := newFS(t)
	ctx := t.Context()
	for _, p := range []string{
		"/r/a/rev/1/link", "/r/a/rev/2/link", // two units of one parent
		"/r/b/rev/3/link", "/r/b/rev/keep/link", // the parent stays
		"/x/4/link", "/x/4/extra", "/x/4/sub/f", // more than expected
		"/l/5/link",                 // a file unit
		"/l/6/link/f", "/l/6/other", // a folder where a file unit's file belongs
	} {
		if err := d.PutContent(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	folder := func(p string) storage.Unit { return storage.Unit{Path: p, Files: []string{p + "/link"}} }
	file := func(p string) storage.Unit { return storage.Unit{Path: p, Files: []string{p}} }
	err := d.DeleteUnits(ctx, []storage.Unit{
		folder("/r/a/rev/1"), folder("/r/a/rev/2"), folder("/r/b/rev/3"), folder("/x/4"),
		file("/l/5/link"), file("/l/6/link"),
		folder("/gone/7"), file("/gone/8/link"), // already gone: not errors
	})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && p != root {
			left = append(left, strings.TrimPrefix(p, root))
		}
		return err
	})
	want := []string{"/l", "/l/6", "/l/6/other", "/r", "/r/b", "/r/b/rev", "/r/b/rev/keep", "/r/b/rev/keep/link"}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left:\n%v\nwant:\n%v", left, want)
	}
}

// A unit that is a symlink is removed, never followed, as Delete does.
func TestFilesystemDeleteUnitsDoesNotFollowSymlinks(t *testing.T) {
	d, root := newFS(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "link"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "a", "unit")); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUnits(t.Context(), []storage.Unit{{Path: "/a/unit", Files: []string{"/a/unit/link"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "link")); err != nil {
		t.Errorf("DeleteUnits followed the symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Errorf("the symlink or its emptied folder is still there: %v", err)
	}
}

// A failure names its unit; the units before it are deleted and pruned.
func TestFilesystemDeleteUnitsError(t *testing.T) {
	d, root := newFS(t)
	ctx := t.Context()
	for _, p := range []string{"/a/1/link", "/b/2/link"} {
		if err := d.PutContent(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	err := d.DeleteUnits(ctx, []storage.Unit{
		{Path: "/a/1", Files: []string{"/a/1/link"}},
		{Path: "/b/2", Files: []string{"/elsewhere/link"}},
	})
	if err == nil || !strings.Contains(err.Error(), "/b/2") {
		t.Errorf("err = %v, want one naming /b/2", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Errorf("the unit before the failure, or its emptied parent, is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "b/2/link")); err != nil {
		t.Errorf("the failed unit lost its file: %v", err)
	}
}
