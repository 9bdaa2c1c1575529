package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileAtomicReplacesWithMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "new" || st.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %04o, want \"new\" 0600", b, st.Mode().Perm())
	}
	assertOnly(t, dir, "f")
}

// A write that cannot complete leaves the old file as it was and no
// temporary file behind.
func TestWriteFileAtomicFailureLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	// Renaming a file over a non-empty folder fails.
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("x"), 0o644); err == nil {
		t.Fatal("write over a folder succeeded")
	}
	if st, err := os.Stat(filepath.Join(target, "keep")); err != nil || !st.IsDir() {
		t.Errorf("old content damaged: %v", err)
	}
	assertOnly(t, dir, "target")

	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(names) {
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		t.Errorf("folder holds %v, want %v", got, names)
	}
}

func TestLockIsExclusiveAndReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Errorf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := Lock(path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	for _, n := range []string{"config.yml", ".config.yml.tmp-123", ".config.yml.tmp-abc", ".other.tmp-1"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	if err := RemoveStaleTemps(path); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "config.yml", ".other.tmp-1")
}

// The group is set on the temporary file before any byte lands, so a
// file meant for one group is never readable by another one, and the
// rename keeps it.
func TestWriteFileAtomicGroup(t *testing.T) {
	gid := otherGroup(t)
	path := filepath.Join(t.TempDir(), "gitlab.yml")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomicGroup(path, []byte("new"), 0o640, gid); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := int(st.Sys().(*syscall.Stat_t).Gid); got != gid || st.Mode().Perm() != 0o640 {
		t.Errorf("group %d mode %04o, want %d 0640", got, st.Mode().Perm(), gid)
	}
}

// otherGroup is a group this process may give files to other than the
// one its new files get anyway.
func otherGroup(t *testing.T) int {
	t.Helper()
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g != os.Getegid() {
			return g
		}
	}
	if os.Geteuid() == 0 {
		return os.Getegid() + 1 // root may give a file to any group id
	}
	t.Skip("this process belongs to no second group")
	return 0
}
