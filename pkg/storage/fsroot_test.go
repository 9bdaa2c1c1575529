package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// readAll reads what os.ReadFile reads, whatever the size.
func TestReadAllMatchesOSReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 71, 135, 511, 512, 513, 1024, 4096, 1<<20 + 3} {
		name := filepath.Join(dir, fmt.Sprintf("f%d", n))
		b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(fd)
		unix.Close(fd)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%d bytes: read %d, %v", n, len(got), err)
		}
	}
}

// readDirNames lists every entry, sorted, however many buffers it takes.
func TestReadDirNamesLarge(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 3000 {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 40))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	got, err := readDirNames(fd)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %d names (sorted: %v), %v; want %d", len(got), slices.IsSorted(got), err, len(want))
	}
}

// Both ways of resolving a path answer alike: ENOENT, ENOTDIR, and ELOOP
// for a link wherever it is.
func TestOpenBeneathErrors(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "f"), []byte("x"), 0o644)
	os.Symlink("b", filepath.Join(dir, "a", "l"))
	os.Symlink("f", filepath.Join(dir, "a", "lf"))
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	for _, c := range []struct {
		rel  string
		want error
	}{
		{".", nil}, {"a/f", nil}, {"a/b", nil},
		{"a/missing", unix.ENOENT}, {"a/f/x", unix.ENOTDIR},
		{"a/l", unix.ELOOP}, {"a/l/x", unix.ELOOP}, {"a/lf", unix.ELOOP},
	} {
		for name, open := range map[string]func(int, string, int, uint32) (int, error){
			"openBeneath": openBeneath, "openPerComponent": openPerComponent,
		} {
			fd, err := open(root, c.rel, unix.O_RDONLY, 0)
			if err == nil {
				unix.Close(fd)
			}
			if err != c.want {
				t.Errorf("%s(%q) = %v, want %v", name, c.rel, err, c.want)
			}
		}
	}
}
