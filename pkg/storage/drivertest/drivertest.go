// Package drivertest is the behavioural contract of storage.Driver, as a
// test suite every driver runs against its real backend (a temporary
// folder, an S3 server), so the registry, GC and migration can rely on
// the same behaviour whatever the storage.
//
// Contract details the interface comments leave open, pinned here:
//   - Paths are checked with storage.CheckPath; a bad one is an error
//     wrapping storage.ErrInvalidPath and touches nothing.
//   - Every "missing" error wraps storage.ErrNotFound, including a path
//     below a file and a Writer appending to a missing file.
//   - Reader at offset == size reads nothing; below 0 or past the size is
//     an error wrapping storage.ErrInvalidOffset.
//   - A FileWriter refuses Write and Commit after Close, Commit or Cancel;
//     Close after those is a no-op; Cancel after Commit is an error;
//     Cancel removes the file. Close without Commit keeps what was written
//     for a later Writer(append=true), whose Size starts there.
//   - Folders exist only while something is below them, have size 0, and
//     PutContent, Writer and Move create them.
//   - List is sorted; Walk is depth first, a folder right before its
//     contents, and excludes the starting folder. Siblings come in byte
//     order of their names, a folder's name counted with a trailing "/"
//     or without, as the driver likes (S3 lists keys in full-key order,
//     "a-b" < "a/x"; the filesystem sorts names, "a" < "a-b"): the same
//     order within each folder of one walk. ErrSkipDir on a file is
//     ignored. Listing or walking a file is an error.
//   - Delete, Move and writes of "/" are refused.
package drivertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"regctl/pkg/storage"
)

// Run runs the suite. newDriver must return a driver on an empty root
// that the subtest may fill as it likes; it is called once per subtest.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Driver)
	}{
		{"InvalidPaths", testInvalidPaths},
		{"PutGetContent", testPutGetContent},
		{"Stat", testStat},
		{"List", testList},
		{"Reader", testReader},
		{"WriterTruncates", testWriterTruncates},
		{"WriterAppends", testWriterAppends},
		{"WriterStates", testWriterStates},
		{"WriterCancel", testWriterCancel},
		{"LargeAppend", testLargeAppend},
		{"Move", testMove},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"WalkSkipAndStop", testWalkSkipAndStop},
		{"ConcurrentPutContent", testConcurrentPutContent},
		{"ConcurrentWriteDelete", testConcurrentWriteDelete},
		{"Opener", testOpener},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDriver(t)) })
	}
}

func put(t *testing.T, d storage.Driver, p, content string) {
	t.Helper()
	if err := d.PutContent(t.Context(), p, []byte(content)); err != nil {
		t.Fatalf("PutContent(%s): %v", p, err)
	}
}

func get(t *testing.T, d storage.Driver, p string) string {
	t.Helper()
	b, err := d.GetContent(t.Context(), p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	return string(b)
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: got %v, want an error wrapping ErrNotFound", what, err)
	}
}

func wantGone(t *testing.T, d storage.Driver, paths ...string) {
	t.Helper()
	for _, p := range paths {
		_, err := d.Stat(t.Context(), p)
		wantNotFound(t, err, "Stat("+p+")")
	}
}

func wantList(t *testing.T, d storage.Driver, p string, want ...string) {
	t.Helper()
	got, err := d.List(t.Context(), p)
	if err != nil {
		t.Fatalf("List(%s): %v", p, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(%s) = %q, want %q", p, got, want)
	}
}

func readAll(t *testing.T, d storage.Driver, p string, offset int64) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), p, offset)
	if err != nil {
		t.Fatalf("Reader(%s, %d): %v", p, offset, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s at %d: %v", p, offset, err)
	}
	return b
}

func write(t *testing.T, w storage.FileWriter, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func writer(t *testing.T, d storage.Driver, p string, append bool) storage.FileWriter {
	t.Helper()
	w, err := d.Writer(t.Context(), p, append)
	if err != nil {
		t.Fatalf("Writer(%s, append=%v): %v", p, append, err)
	}
	return w
}

func testInvalidPaths(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	bad := []string{"", "a/b", "/a//b", "//a", "/a/../b", "/..", "/a/..", "/a/./b", "/a/b/", "/a\x00b"}
	for _, p := range bad {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrInvalidPath) {
				t.Errorf("%s(%q): got %v, want an error wrapping ErrInvalidPath", op, p, err)
			}
		}
		check("PutContent", d.PutContent(ctx, p, []byte("x")))
		_, err := d.GetContent(ctx, p)
		check("GetContent", err)
		_, err = d.Reader(ctx, p, 0)
		check("Reader", err)
		_, err = d.Writer(ctx, p, false)
		check("Writer", err)
		_, err = d.Stat(ctx, p)
		check("Stat", err)
		_, err = d.List(ctx, p)
		check("List", err)
		check("Move from", d.Move(ctx, p, "/ok"))
		check("Move to", d.Move(ctx, "/ok", p))
		check("Delete", d.Delete(ctx, p))
		check("Walk", d.Walk(ctx, p, func(storage.FileInfo) error { return nil }))
		if o, ok := storage.As[storage.Opener](d); ok {
			_, _, err = o.Open(ctx, p)
			check("Open", err)
		}
	}
	// Nothing was written anywhere.
	err := d.Walk(ctx, "/", func(fi storage.FileInfo) error {
		t.Errorf("bad paths left %s behind", fi.Path)
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Walk(/): %v", err)
	}
	// ".." only as a whole element is bad: tags like "v1..2" are valid.
	put(t, d, "/ok/v1..2/.hidden", "x")
	if got := get(t, d, "/ok/v1..2/.hidden"); got != "x" {
		t.Errorf("got %q", got)
	}
}

func testPutGetContent(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	p := "/pg/a/b/file"
	put(t, d, p, "hello, world")
	if got := get(t, d, p); got != "hello, world" {
		t.Errorf("got %q", got)
	}
	put(t, d, p, "hi") // shorter: nothing of the old content may remain
	if got := get(t, d, p); got != "hi" {
		t.Errorf("after overwrite got %q, want %q", got, "hi")
	}
	put(t, d, p, "")
	if got := get(t, d, p); got != "" {
		t.Errorf("after empty put got %q", got)
	}
	var bin []byte
	for i := range 256 {
		bin = append(bin, byte(i))
	}
	put(t, d, "/pg/bin", string(bin))
	if got := get(t, d, "/pg/bin"); got != string(bin) {
		t.Errorf("binary content changed: %q", got)
	}
	for _, dir := range []string{"/pg", "/pg/a", "/pg/a/b"} {
		if fi, err := d.Stat(ctx, dir); err != nil || !fi.IsDir {
			t.Errorf("Stat(%s) = %+v, %v: want a folder made by PutContent", dir, fi, err)
		}
	}
	_, err := d.GetContent(ctx, "/pg/missing")
	wantNotFound(t, err, "GetContent(missing)")
	_, err = d.GetContent(ctx, p+"/below")
	wantNotFound(t, err, "GetContent(below a file)")
	if _, err := d.GetContent(ctx, "/pg/a"); err == nil {
		t.Error("GetContent(folder) succeeded")
	}
	if err := d.PutContent(ctx, "/", []byte("x")); err == nil {
		t.Error("PutContent(/) succeeded")
	}
}

func testStat(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "/st/dir/file", "12345")
	put(t, d, "/st/ab", "x")
	fi, err := d.Stat(ctx, "/st/dir/file")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path != "/st/dir/file" || fi.Size != 5 || fi.IsDir || fi.ModTime.IsZero() {
		t.Errorf("Stat(file) = %+v", fi)
	}
	for _, dir := range []string{"/st/dir", "/st", "/"} {
		fi, err := d.Stat(ctx, dir)
		if err != nil {
			t.Fatalf("Stat(%s): %v", dir, err)
		}
		if fi.Path != dir || !fi.IsDir || fi.Size != 0 {
			t.Errorf("Stat(%s) = %+v, want a folder of size 0", dir, fi)
		}
	}
	// "/st/a" is a prefix of "/st/ab" but names nothing.
	wantGone(t, d, "/st/missing", "/st/a", "/st/dir/fil", "/st/dir/file/below")
}

func testList(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	for _, p := range []string{"/ls/b", "/ls/a/x", "/ls/a/y", "/ls/c/z/deep", "/ls/a-b", "/ls/ab/q", "/lsx/s"} {
		put(t, d, p, p)
	}
	// Each child once, folders and files alike, in byte order.
	wantList(t, d, "/ls", "/ls/a", "/ls/a-b", "/ls/ab", "/ls/b", "/ls/c")
	wantList(t, d, "/ls/a", "/ls/a/x", "/ls/a/y")
	wantList(t, d, "/ls/c", "/ls/c/z")
	wantList(t, d, "/", "/ls", "/lsx")
	for _, p := range []string{"/ls/missing", "/l", "/ls/a/x/below"} {
		_, err := d.List(ctx, p)
		wantNotFound(t, err, "List("+p+")")
	}
	if got, err := d.List(ctx, "/ls/b"); err == nil {
		t.Errorf("List(file) = %q, want an error", got)
	}
}

func testReader(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	const content = "0123456789"
	put(t, d, "/rd/f", content)
	for _, off := range []int64{0, 3, 9, 10} {
		if got := readAll(t, d, "/rd/f", off); string(got) != content[off:] {
			t.Errorf("read at %d = %q, want %q", off, got, content[off:])
		}
	}
	for _, off := range []int64{11, 1 << 40, -1} {
		r, err := d.Reader(ctx, "/rd/f", off)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, storage.ErrInvalidOffset) {
			t.Errorf("Reader at %d: got %v, want an error wrapping ErrInvalidOffset", off, err)
		}
	}
	_, err := d.Reader(ctx, "/rd/missing", 0)
	wantNotFound(t, err, "Reader(missing)")
	_, err = d.Reader(ctx, "/rd/f/below", 0)
	wantNotFound(t, err, "Reader(below a file)")
	if r, err := d.Reader(ctx, "/rd", 0); err == nil {
		r.Close()
		t.Error("Reader(folder) succeeded")
	}
}

func testWriterTruncates(t *testing.T, d storage.Driver) {
	put(t, d, "/wt/f", "a long old content")
	w := writer(t, d, "/wt/f", false)
	if w.Size() != 0 {
		t.Errorf("Size = %d before writing, want 0", w.Size())
	}
	write(t, w, "new")
	if w.Size() != 3 {
		t.Errorf("Size = %d, want 3", w.Size())
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got := get(t, d, "/wt/f"); got != "new" {
		t.Errorf("got %q, want %q", got, "new")
	}
	// A new file in new folders; and an empty one.
	w = writer(t, d, "/wt/new/deep/f", false)
	write(t, w, "x")
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = writer(t, d, "/wt/empty", false)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if fi, err := d.Stat(t.Context(), "/wt/empty"); err != nil || fi.Size != 0 || fi.IsDir {
		t.Errorf("Stat(empty) = %+v, %v", fi, err)
	}
}

func testWriterAppends(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w := writer(t, d, "/wa/f", false)
	write(t, w, "abc")
	if err := w.Close(); err != nil { // no Commit: a chunk of an upload
		t.Fatal(err)
	}
	w = writer(t, d, "/wa/f", true)
	if w.Size() != 3 {
		t.Errorf("append Size = %d, want 3", w.Size())
	}
	write(t, w, "de")
	write(t, w, "f")
	if w.Size() != 6 {
		t.Errorf("Size = %d, want 6", w.Size())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := get(t, d, "/wa/f"); got != "abcdef" {
		t.Errorf("got %q", got)
	}
	if fi, err := d.Stat(ctx, "/wa/f"); err != nil || fi.Size != 6 {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
	// Appending to a committed file continues it too.
	w = writer(t, d, "/wa/f", true)
	write(t, w, "g")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/wa/f"); got != "abcdefg" {
		t.Errorf("got %q", got)
	}
	// An upload that vanished is not silently restarted at 0.
	_, err := d.Writer(ctx, "/wa/missing", true)
	wantNotFound(t, err, "Writer(missing, append)")
	wantGone(t, d, "/wa/missing")
}

func testWriterStates(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w := writer(t, d, "/ws/committed", false)
	write(t, w, "x")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Cancel(ctx); err == nil {
		t.Error("Cancel after Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got := get(t, d, "/ws/committed"); got != "x" {
		t.Errorf("committed content = %q, want %q", got, "x")
	}

	w = writer(t, d, "/ws/closed", false)
	write(t, w, "x")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testWriterCancel(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "/wc/keep", "k")
	w := writer(t, d, "/wc/up/data", false)
	write(t, w, "abc")
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Error("Write after Cancel succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("Commit after Cancel succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Cancel: %v", err)
	}
	wantGone(t, d, "/wc/up/data", "/wc/up")
	wantList(t, d, "/wc", "/wc/keep")

	// Cancel abandons the whole upload, earlier sessions included.
	w = writer(t, d, "/wc/up2/data", false)
	write(t, w, "abc")
	w.Close()
	w = writer(t, d, "/wc/up2/data", true)
	write(t, w, "def")
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	wantGone(t, d, "/wc/up2/data")
}

// pattern is deterministic data that differs at every offset, so a read
// from a wrong offset cannot pass.
func pattern(n int) []byte {
	b := make([]byte, n+8)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < n; i += 8 { // 8 bytes a step: fast under -race too
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b[:n]
}

func testLargeAppend(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	const p = "/big/_uploads/u/data"
	data := pattern(20<<20 + 7)
	split := 9<<20 + 12345 // the second session starts mid-chunk
	chunks := []int{1, 4093, 65537, 1<<20 + 3, 333333, 7, 5<<20 + 1}
	writeRange := func(w storage.FileWriter, from, to int) {
		t.Helper()
		for i, off := 0, from; off < to; i++ {
			n := min(chunks[i%len(chunks)], to-off)
			if m, err := w.Write(data[off : off+n]); err != nil || m != n {
				t.Fatalf("Write at %d: %d, %v", off, m, err)
			}
			off += n
		}
	}
	w := writer(t, d, p, false)
	writeRange(w, 0, split)
	if w.Size() != int64(split) {
		t.Errorf("Size = %d, want %d", w.Size(), split)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = writer(t, d, p, true)
	if w.Size() != int64(split) {
		t.Fatalf("append Size = %d, want %d", w.Size(), split)
	}
	writeRange(w, split, len(data))
	if w.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", w.Size(), len(data))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()

	fi, err := d.Stat(ctx, p)
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v; want size %d", fi, err, len(data))
	}
	buf := make([]byte, 1<<20)
	for _, off := range []int{0, 1, split - 1, split, len(data) - 4097, len(data)} {
		r, err := d.Reader(ctx, p, int64(off))
		if err != nil {
			t.Fatalf("Reader at %d: %v", off, err)
		}
		if err := sameBytes(r, data[off:], buf); err != nil {
			t.Errorf("read at %d: %v", off, err)
		}
		r.Close()
	}
}

// sameBytes compares a stream with want piece by piece, sparing 20 MiB
// allocations per read (slow under -race).
func sameBytes(r io.Reader, want, buf []byte) error {
	for pos := 0; ; {
		n, err := io.ReadFull(r, buf)
		if n > len(want)-pos || !bytes.Equal(buf[:n], want[pos:pos+n]) {
			return fmt.Errorf("bytes differ from what was written in [%d, %d)", pos, pos+n)
		}
		pos += n
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if pos != len(want) {
				return fmt.Errorf("read %d bytes, want %d", pos, len(want))
			}
			return nil
		case err != nil:
			return err
		}
	}
}

func testMove(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "/mv/src", "one")
	if err := d.Move(ctx, "/mv/src", "/mv/new/deep/dst"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/mv/new/deep/dst"); got != "one" {
		t.Errorf("moved content = %q", got)
	}
	wantGone(t, d, "/mv/src")

	put(t, d, "/mv/a", "aaa")
	put(t, d, "/mv/b", "a longer old content")
	if err := d.Move(ctx, "/mv/a", "/mv/b"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/mv/b"); got != "aaa" {
		t.Errorf("replaced content = %q, want %q", got, "aaa")
	}
	wantGone(t, d, "/mv/a")

	wantNotFound(t, d.Move(ctx, "/mv/missing", "/mv/b"), "Move(missing)")
	wantNotFound(t, d.Move(ctx, "/mv/missing", "/mv/nowhere/x"), "Move(missing)")
	if got := get(t, d, "/mv/b"); got != "aaa" {
		t.Errorf("failed move changed dst to %q", got)
	}
	wantGone(t, d, "/mv/nowhere")
	if err := d.Move(ctx, "/", "/x"); err == nil {
		t.Error("Move(/) succeeded")
	}
}

func testDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "/del/f", "x")
	if err := d.Delete(ctx, "/del/f"); err != nil {
		t.Fatal(err)
	}
	wantGone(t, d, "/del/f")
	wantNotFound(t, d.Delete(ctx, "/del/f"), "Delete(deleted)")
	// Folders last only while something is below them.
	put(t, d, "/del/deep/er/f", "x")
	if err := d.Delete(ctx, "/del/deep/er/f"); err != nil {
		t.Fatal(err)
	}
	wantGone(t, d, "/del/deep/er", "/del/deep")

	tree := []string{"/del/tree/a", "/del/tree/b/c", "/del/tree/b/d/e"}
	keep := []string{"/del/treex/keep", "/del/tree-1", "/del/tre"}
	for _, p := range append(tree, keep...) {
		put(t, d, p, p)
	}
	if err := d.Delete(ctx, "/del/tree"); err != nil {
		t.Fatal(err)
	}
	wantGone(t, d, append(tree, "/del/tree", "/del/tree/b", "/del/tree/b/d")...)
	for _, p := range keep { // same prefix, other names: untouched
		if got := get(t, d, p); got != p {
			t.Errorf("%s = %q after deleting /del/tree", p, got)
		}
	}
	wantList(t, d, "/del", "/del/tre", "/del/tree-1", "/del/treex")

	wantNotFound(t, d.Delete(ctx, "/del/missing"), "Delete(missing)")
	wantNotFound(t, d.Delete(ctx, "/del/tre/below"), "Delete(below a file)")
	if err := d.Delete(ctx, "/"); err == nil {
		t.Error("Delete(/) succeeded")
	}
	if got := get(t, d, "/del/tre"); got != "/del/tre" {
		t.Errorf("Delete(/) damaged content: %q", got)
	}
}

type visit struct {
	path  string
	isDir bool
	size  int64
}

func walkAll(t *testing.T, d storage.Driver, p string, fn func(storage.FileInfo) error) ([]visit, error) {
	t.Helper()
	var got []visit
	err := d.Walk(t.Context(), p, func(fi storage.FileInfo) error {
		got = append(got, visit{fi.Path, fi.IsDir, fi.Size})
		if fn != nil {
			return fn(fi)
		}
		return nil
	})
	return got, err
}

func walkTree(t *testing.T, d storage.Driver) {
	for _, p := range []string{"/w/a/x", "/w/a/z/q", "/w/a-b", "/w/a.c/y", "/w/b", "/wz/other"} {
		put(t, d, p, p) // sizes differ, so they are checked too
	}
}

// fullWalk is what walkTree puts below /w. Its order is one a driver may
// walk in (names sorted); "/w/a" may also come after "/w/a-b" and
// "/w/a.c" (keys sorted: "/w/a-b" < "/w/a.c/y" < "/w/a/x").
var fullWalk = []visit{
	{"/w/a", true, 0},
	{"/w/a/x", false, 6},
	{"/w/a/z", true, 0},
	{"/w/a/z/q", false, 8},
	{"/w/a-b", false, 6},
	{"/w/a.c", true, 0},
	{"/w/a.c/y", false, 8},
	{"/w/b", false, 4},
}

// checkWalk checks that got visits exactly want's entries below root in
// an order the contract allows (see the package comment).
func checkWalk(t *testing.T, root string, got, want []visit) {
	t.Helper()
	sorted := func(v []visit) []visit {
		v = slices.Clone(v)
		slices.SortFunc(v, func(a, b visit) int { return strings.Compare(a.path, b.path) })
		return v
	}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("Walk(%s) visited\n%v\nwant (in some allowed order)\n%v", root, got, want)
		return
	}
	// Depth first: everything below a folder comes right after it.
	for i, v := range got {
		if !v.isDir {
			continue
		}
		below := 0
		for _, w := range got {
			if strings.HasPrefix(w.path, v.path+"/") {
				below++
			}
		}
		for _, w := range got[i+1 : i+1+below] {
			if !strings.HasPrefix(w.path, v.path+"/") {
				t.Errorf("Walk(%s) = %v: %s comes between folder %s and its contents", root, got, w.path, v.path)
				return
			}
		}
	}
	// Siblings in byte order, folders named with or without a "/".
	children := map[string][]visit{}
	for _, v := range got {
		dir := path.Dir(v.path)
		children[dir] = append(children[dir], v)
	}
	for dir, kids := range children {
		byName := slices.IsSortedFunc(kids, func(a, b visit) int { return strings.Compare(a.path, b.path) })
		byKey := slices.IsSortedFunc(kids, func(a, b visit) int { return strings.Compare(walkKey(a), walkKey(b)) })
		if !byName && !byKey {
			t.Errorf("Walk(%s): entries of %s come in no allowed order: %v", root, dir, kids)
		}
	}
}

// walkKey is a visit's path with a folder's trailing "/", as S3 keys sort.
func walkKey(v visit) string {
	if v.isDir {
		return v.path + "/"
	}
	return v.path
}

// without returns the visits of full not below any of the folders dirs,
// in full's order.
func without(full []visit, dirs ...string) []visit {
	var out []visit
	for _, v := range full {
		if !slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(v.path, d+"/") }) {
			out = append(out, v)
		}
	}
	return out
}

func testWalk(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	walkTree(t, d)
	got, err := walkAll(t, d, "/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWalk(t, "/w", got, fullWalk)
	got, err = walkAll(t, d, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]visit{{"/w", true, 0}}, fullWalk...)
	want = append(want, visit{"/wz", true, 0}, visit{"/wz/other", false, 9})
	checkWalk(t, "/", got, want)
	wantNotFound(t, d.Walk(ctx, "/missing", func(storage.FileInfo) error { return nil }), "Walk(missing)")
	if err := d.Walk(ctx, "/w/b", func(storage.FileInfo) error { return nil }); err == nil {
		t.Error("Walk(file) succeeded")
	}
}

func testWalkSkipAndStop(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	walkTree(t, d)
	// The driver's own order, checked by testWalk; the walks below must
	// follow it, minus what they skip.
	full, err := walkAll(t, d, "/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWalk(t, "/w", full, fullWalk)

	got, err := walkAll(t, d, "/w", func(fi storage.FileInfo) error {
		if fi.Path == "/w/a" || fi.Path == "/w/a.c/y" {
			return storage.ErrSkipDir // on a file: nothing to skip
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := without(full, "/w/a"); !slices.Equal(got, want) {
		t.Errorf("Walk skipping /w/a =\n%v\nwant\n%v", got, want)
	}
	// A wrapped ErrSkipDir counts too.
	got, err = walkAll(t, d, "/w", func(fi storage.FileInfo) error {
		if fi.IsDir {
			return fmt.Errorf("not now: %w", storage.ErrSkipDir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := without(full, "/w/a", "/w/a.c"); !slices.Equal(got, want) {
		t.Errorf("Walk skipping every folder =\n%v\nwant\n%v", got, want)
	}

	stop := errors.New("stop")
	got, err = walkAll(t, d, "/w", func(fi storage.FileInfo) error {
		if fi.Path == "/w/a/z" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("Walk returned %v, want the callback's error", err)
	}
	at := slices.IndexFunc(full, func(v visit) bool { return v.path == "/w/a/z" })
	if want := full[:at+1]; !slices.Equal(got, want) {
		t.Errorf("Walk went on after an error: %v, want %v", got, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	calls := 0
	err = d.Walk(cctx, "/w", func(storage.FileInfo) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("cancelled Walk: %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

// Concurrent puts of whole versions must leave one whole version, and a
// reader meanwhile must only ever see whole versions.
func testConcurrentPutContent(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	const p = "/cc/same"
	const writers, rounds = 6, 8
	version := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 4096*(i+1)+i) }
	valid := func(b []byte) bool {
		if len(b) == 0 {
			return false
		}
		i := int(b[0] - 'a')
		return i >= 0 && i < writers && bytes.Equal(b, version(i))
	}
	if err := d.PutContent(ctx, p, version(0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := d.GetContent(ctx, p)
			if err != nil {
				t.Errorf("GetContent during puts: %v", err)
				return
			}
			if !valid(b) {
				t.Errorf("read a torn file: %d bytes starting %q", len(b), b[:min(len(b), 8)])
				return
			}
		}
	})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for range rounds {
				if err := d.PutContent(ctx, p, version(i)); err != nil {
					t.Errorf("PutContent: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if b := []byte(get(t, d, p)); !valid(b) {
		t.Errorf("final content torn: %d bytes", len(b))
	}
	wantList(t, d, "/cc", p) // no temporary file shows
}

// Writers and deleters in one folder: a delete emptying the folder must
// not break a write that is creating a file in it.
func testConcurrentWriteDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	const workers, rounds = 4, 50
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for r := range rounds {
				p := fmt.Sprintf("/cd/shared/dir/g%d", i)
				if r%2 == 0 {
					if err := d.PutContent(ctx, p, []byte(p)); err != nil {
						t.Errorf("PutContent: %v", err)
						return
					}
				} else {
					w, err := d.Writer(ctx, p, false)
					if err != nil {
						t.Errorf("Writer: %v", err)
						return
					}
					if _, err := w.Write([]byte(p)); err != nil {
						t.Errorf("Write: %v", err)
					}
					if err := w.Commit(ctx); err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
				}
				if got, err := d.GetContent(ctx, p); err != nil || string(got) != p {
					t.Errorf("GetContent(%s) = %q, %v", p, got, err)
				}
				if err := d.Delete(ctx, p); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testOpener(t *testing.T, d storage.Driver) {
	o, ok := storage.As[storage.Opener](d)
	if !ok {
		t.Skipf("%s does not implement storage.Opener", d.Name())
	}
	ctx := t.Context()
	const content = "0123456789abcdef"
	put(t, d, "/op/f", content)
	f, fi, err := o.Open(ctx, "/op/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi.Path != "/op/f" || fi.Size != int64(len(content)) || fi.IsDir {
		t.Errorf("Open info = %+v", fi)
	}
	readAt := func(off int64, whence, n int) string {
		t.Helper()
		if _, err := f.Seek(off, whence); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(f, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := readAt(4, io.SeekStart, 4); got != "4567" {
		t.Errorf("read at 4 = %q", got)
	}
	if got := readAt(-2, io.SeekEnd, 2); got != "ef" {
		t.Errorf("read at end-2 = %q", got)
	}
	// What blob GETs do with it.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Range", "bytes=2-5")
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, "", fi.ModTime, f)
	if rec.Code != http.StatusPartialContent || rec.Body.String() != "2345" {
		t.Errorf("range GET = %d %q, want 206 %q", rec.Code, rec.Body.String(), "2345")
	}
	_, _, err = o.Open(ctx, "/op/missing")
	wantNotFound(t, err, "Open(missing)")
	if f, _, err := o.Open(ctx, "/op"); err == nil {
		f.Close()
		t.Error("Open(folder) succeeded")
	}
}

func testCancelledContext(t *testing.T, d storage.Driver) {
	put(t, d, "/cx/f", "x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.PutContent(ctx, "/cx/g", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutContent with a cancelled context: %v", err)
	}
	if _, err := d.GetContent(ctx, "/cx/f"); err == nil {
		t.Error("GetContent with a cancelled context succeeded")
	}
	if err := d.Walk(ctx, "/cx", func(storage.FileInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with a cancelled context: %v", err)
	}
	if got := get(t, d, "/cx/f"); got != "x" {
		t.Errorf("content changed: %q", got)
	}
	wantGone(t, d, "/cx/g")
}
