package storage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/storage"
)

// TestFilesystemCheck: a root not made yet is healthy, one that was
// there and is gone is not.
func TestFilesystemCheck(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "registry")
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("a root not made yet: %v", err)
	}
	if err := d.PutContent(t.Context(), "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("a root in use: %v", err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "storage.filesystem.rootdirectory "+root+" is gone") {
		t.Fatalf("a root gone: %v", err)
	}
}
