// Package storage is the storage driver interface shared by the registry
// daemon, garbage collection and migration, with the filesystem and S3
// drivers, opened by name with Open (factory.go), their optional
// capabilities, found with As (capability.go), and the CNCF Distribution
// v2 path layout (see layout.go).
//
// Paths are driver paths: absolute, slash-separated, rooted at the
// driver's root ("/docker/registry/v2/blobs/..."), as in Distribution, so
// that a root written by either program is read by the other.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrNotFound is wrapped by every driver error about a missing path.
var ErrNotFound = errors.New("path not found")

// ErrSkipDir tells Walk not to descend into the folder just visited.
var ErrSkipDir = errors.New("skip this folder")

// ErrInvalidOffset is wrapped by Reader errors for an offset below 0 or
// beyond the file's size (an offset equal to the size reads nothing).
var ErrInvalidOffset = errors.New("invalid offset")

// ErrInvalidPath is wrapped by every driver error about a path that is
// not a valid driver path (see CheckPath).
var ErrInvalidPath = errors.New("invalid path")

// ErrSymlink is wrapped by the filesystem driver's errors about a path
// that is, or goes through, a symbolic link inside the root. The driver
// never follows one, so nothing outside the root is ever read, written
// or deleted through it.
var ErrSymlink = errors.New("a symbolic link on the path (never followed)")

// NotFound builds the error drivers return for a missing path.
func NotFound(path string) error { return fmt.Errorf("%s: %w", path, ErrNotFound) }

// InvalidOffset builds the error Reader returns for an offset past the end.
func InvalidOffset(path string, offset, size int64) error {
	return fmt.Errorf("%s: %w %d (size %d)", path, ErrInvalidOffset, offset, size)
}

// FileInfo describes one path.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
	// Symlink marks a symbolic link that Walk met on the filesystem:
	// reported so callers can say so, never followed (IsDir is false,
	// Size 0). No other method returns one; they fail with ErrSymlink.
	Symlink bool
}

// Driver stores files by path. Implementations must be safe for
// concurrent use.
type Driver interface {
	// Name is the driver's name in config.yml ("filesystem", "s3").
	Name() string
	// GetContent reads a whole small file.
	GetContent(ctx context.Context, path string) ([]byte, error)
	// PutContent replaces a small file atomically: a reader sees the old
	// content or the new, never a part.
	PutContent(ctx context.Context, path string, content []byte) error
	// Reader streams a file from offset.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer writes a file, appending to what is there when append is set.
	// What it writes is only guaranteed to be at path after Commit.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)
	// Stat describes a file or folder.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// List returns the full paths of the direct children of a folder.
	List(ctx context.Context, path string) ([]string, error)
	// Move renames src to dst, replacing dst, atomically where the
	// backend allows.
	Move(ctx context.Context, src, dst string) error
	// Delete removes a file, or a folder and everything below it.
	Delete(ctx context.Context, path string) error
	// Walk calls fn for every file and folder below path, depth first:
	// a folder right before everything below it, and the entries of one
	// folder in byte order of their names, where a folder's name may
	// count with a trailing "/" or without. So "a-b" and folder "a" may
	// come in either order: the filesystem sorts names ("a" < "a-b"), S3
	// lists keys ("a-b" < "a/x"), and neither buffers a whole tree to
	// sort it the other way. fn returning ErrSkipDir on a folder skips
	// its contents. A symbolic link comes as an entry with Symlink set,
	// and nothing below it.
	Walk(ctx context.Context, path string, fn func(FileInfo) error) error
}

// FileWriter writes one file.
//
// A write may span several sessions (an upload's chunks arrive in separate
// requests, possibly on different nodes): Close ends a session durably so
// that a later Writer(path, append=true) continues it; Commit ends the
// last one and makes the whole file appear at path. On the filesystem the
// file is visible all along; on S3 it is a multipart upload until Commit.
type FileWriter interface {
	// Write adds bytes; Close, Commit or Cancel ends the session. Close
	// after any of them does nothing, so `defer w.Close()` is safe.
	io.WriteCloser
	// Size is the file's size so far, including earlier sessions.
	Size() int64
	// Cancel discards the file, earlier sessions included.
	Cancel(ctx context.Context) error
	// Commit makes the file durable and visible at path; no further
	// appends.
	Commit(ctx context.Context) error
}

// SeekableFile is a file that can serve HTTP ranges directly.
type SeekableFile interface {
	io.ReadSeekCloser
}

// Opener is implemented by drivers whose files can be opened for
// seeking, so blob GETs are served with ranges and sendfile.
type Opener interface {
	Open(ctx context.Context, path string) (SeekableFile, FileInfo, error)
}

// Redirector is implemented by drivers that can send clients straight to
// the backend (a presigned S3 URL).
type Redirector interface {
	RedirectURL(r *http.Request, path string) (string, error)
}
