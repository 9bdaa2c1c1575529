package service

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/internal/testtools"
)

func TestLastLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 20<<10) // longer than a read block
	tests := []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 2, "b\nc"}, // no final newline
		{"a\nb\nc\n", 0, ""},
		{"", 5, ""},
		{"\n\n", 1, "\n"},
		{long + "\n" + long + "\nend\n", 2, long + "\nend\n"},
	}
	for i, tc := range tests {
		path := filepath.Join(t.TempDir(), "log")
		os.WriteFile(path, []byte(tc.content), 0o644)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, size, err := lastLines(f, tc.n)
		f.Close()
		if err != nil || string(got) != tc.want || size != int64(len(tc.content)) {
			t.Errorf("%d: lastLines(%d) = %q (size %d, %v), want %q", i, tc.n, trunc(got), size, err, trunc([]byte(tc.want)))
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

func TestTailNoFollow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "current")
	if err := Tail(context.Background(), path, &bytes.Buffer{}, TailOptions{Lines: 3}); err == nil {
		t.Error("a missing log without --follow: want an error")
	}
	os.WriteFile(path, []byte("1\n2\n3\n4\n"), 0o644)
	var out bytes.Buffer
	if err := Tail(context.Background(), path, &out, TailOptions{Lines: 2}); err != nil || out.String() != "3\n4\n" {
		t.Errorf("Tail = %q, %v", out.String(), err)
	}
}

// TestTailFollow: appended lines show up; a truncated or replaced log
// is read again from its start; a log that does not exist yet is waited
// for; the end of ctx ends Tail without an error.
func TestTailFollow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "current")
	out := &testtools.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Tail(ctx, path, out, TailOptions{Lines: 1, Follow: true, Poll: 10 * time.Millisecond}) }()

	time.Sleep(50 * time.Millisecond)
	write := func(flag int, s string) {
		f, err := os.OpenFile(path, flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write(os.O_APPEND, "first\n")
	wait(t, out, "first\n")
	write(os.O_APPEND, "second\n")
	wait(t, out, "first\nsecond\n")
	write(os.O_TRUNC, "after truncate\n") // copytruncate
	wait(t, out, "first\nsecond\nafter truncate\n")
	os.Rename(path, path+".1")
	time.Sleep(50 * time.Millisecond)
	write(os.O_APPEND, "new file\n")
	wait(t, out, "first\nsecond\nafter truncate\nnew file\n")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Tail after cancel: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Tail did not stop")
	}
}

func wait(t *testing.T, out *testtools.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("tail wrote %q, want %q", out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
