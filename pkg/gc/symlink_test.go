package gc_test

import (
	"os"
	"path/filepath"
	"testing"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// GC never follows a symbolic link, so a tag behind one cannot be read.
// The manifests it may point at must not count as untagged then: -m
// keeps every manifest of the repository, wherever below its tags the
// link is.
func TestRunKeepsManifestsWhenATagIsBehindASymlink(t *testing.T) {
	for _, moved := range []string{"tags", "tags/v1", "tags/v1/current/link"} {
		t.Run(moved, func(t *testing.T) {
			root := t.TempDir()
			drv := fsDriver(t, root)
			f := newFixture(t, drv, 1)
			f.image("app", "v1", l1)
			f.image("app", "v2", l2)
			f.image("app", "", l3) // untagged: -m would delete it
			// Move it outside the root and link it back.
			manifests := filepath.Join(root, filepath.FromSlash(storage.ManifestsDir("app")))
			in, out := filepath.Join(manifests, filepath.FromSlash(moved)), filepath.Join(t.TempDir(), "moved")
			if err := os.Rename(in, out); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(out, in); err != nil {
				t.Fatal(err)
			}
			rep, deleted := run(t, drv, gc.Options{RemoveUntagged: true})
			// Each path read through the link is reported.
			if len(deleted) != 0 || rep.Symlinks == 0 {
				t.Errorf("deleted %v, %d symlinks reported; want nothing deleted, the link reported", deleted, rep.Symlinks)
			}
			if _, err := os.Lstat(in); err != nil {
				t.Errorf("the link: %v", err)
			}
		})
	}
}
