package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFile must answer as os.ReadFile does: same bytes, and errors that
// wrap the same causes (so fail maps them alike).
func TestReadFileMatchesOSReadFile(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for _, n := range []int{0, 1, 71, 135, 511, 512, 513, 1024, 4096, 1<<20 + 3} {
		name := filepath.Join(dir, fmt.Sprintf("f%d", n))
		b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	names = append(names,
		dir,                                  // a folder: read fails with EISDIR
		filepath.Join(dir, "missing"),        // ENOENT
		filepath.Join(dir, "f1", "under"),    // ENOTDIR
		filepath.Join(dir, "missing", "too"), // ENOENT
	)
	for _, name := range names {
		got, gotErr := readFile(name)
		want, wantErr := os.ReadFile(name)
		if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: got %d bytes, %v; os.ReadFile %d bytes, %v", name, len(got), gotErr, len(want), wantErr)
			continue
		}
		if gotErr == nil {
			continue
		}
		if gotErr.Error() != wantErr.Error() {
			t.Errorf("%s: error %q, os.ReadFile %q", name, gotErr, wantErr)
		}
		if isNotExist(gotErr) != isNotExist(wantErr) || errors.Is(gotErr, fs.ErrNotExist) != errors.Is(wantErr, fs.ErrNotExist) {
			t.Errorf("%s: %v and %v are not the same kind of error", name, gotErr, wantErr)
		}
	}
}

// fullPath joins by concatenation; it must give what filepath.Join did.
func TestFullPathMatchesJoin(t *testing.T) {
	paths := []string{"/", "/a", "/docker/registry/v2/blobs/sha256/ab/abcd/data", "/v1..2", "/a/..b/c.."}
	for _, root := range []string{"/", "/tmp", "/tmp/x", t.TempDir()} {
		d, err := NewFilesystem(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			got, err := d.fullPath(p)
			if err != nil {
				t.Fatalf("fullPath(%q): %v", p, err)
			}
			if want := filepath.Join(d.root, filepath.FromSlash(p)); got != want {
				t.Errorf("root %q: fullPath(%q) = %q, want %q", root, p, got, want)
			}
		}
	}
}

// refCheckPath is CheckPath as it was, splitting the path.
func refCheckPath(p string) bool {
	switch {
	case p == "/":
		return true
	case !strings.HasPrefix(p, "/"), strings.IndexByte(p, 0) >= 0, strings.HasSuffix(p, "/"):
		return false
	}
	for _, elem := range strings.Split(p[1:], "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

func FuzzCheckPath(f *testing.F) {
	for _, p := range []string{"", "/", "//", "/a", "/a/", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/...", "/a\x00", "a/b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := CheckPath(p) == nil, refCheckPath(p); got != want {
			t.Errorf("CheckPath(%q) ok = %v, want %v", p, got, want)
		}
	})
}
