package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Modes of what the filesystem driver creates. Distribution asks for
// 0777/0666 and lets the umask decide, which gives 0755/0644 under the
// usual umask 022. We set 0755/0644 explicitly instead, whatever the
// umask, so a root written by regctl under a strict umask is still
// readable by a registry running as another user, and either program
// reads the other's tree.
const (
	dirMode  fs.FileMode = 0o755
	fileMode fs.FileMode = 0o644
)

// tempPrefix starts the names of PutContent's temporary files. List and
// Walk hide them, so a write in flight, or one a crash left behind, never
// shows up as a tag, a repository or a blob.
const tempPrefix = ".regctl-tmp-"

// mkdirRetries bounds how often a write re-creates a folder that a
// concurrent Delete pruned between our mkdir and our create.
const mkdirRetries = 10

var (
	_ Driver = (*Filesystem)(nil)
	_ Opener = (*Filesystem)(nil)
)

// Filesystem is the driver for a local folder, with CNCF Distribution's
// on-disk layout: driver path p is the file rootDir+p. It holds no state
// besides the root, so it is safe for concurrent use; atomicity comes
// from rename(2).
type Filesystem struct {
	root string
}

// NewFilesystem returns a driver rooted at rootDir. The folder need not
// exist yet: like Distribution, the driver creates it on the first write.
func NewFilesystem(rootDir string) (*Filesystem, error) {
	if rootDir == "" {
		return nil, errors.New("filesystem: root directory is empty")
	}
	root, err := filepath.Abs(rootDir)
	if err != nil {
		return nil, fmt.Errorf("filesystem: root directory %s: %w", rootDir, err)
	}
	fi, err := os.Stat(root)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("filesystem: root directory %s is not a folder", root)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("filesystem: root directory: %w", err)
	}
	return &Filesystem{root: root}, nil
}

// Name is the driver's name in config.yml.
func (d *Filesystem) Name() string { return "filesystem" }

// fullPath checks a driver path and maps it below the root.
func (d *Filesystem) fullPath(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	// A caller must not be able to name, and so overwrite or delete, a
	// temporary file of a write in flight.
	if strings.Contains(p, "/"+tempPrefix) {
		return "", fmt.Errorf("%w %q: %s names are reserved for temporary files", ErrInvalidPath, p, tempPrefix)
	}
	// p passed CheckPath, so it is clean and absolute, and so is the
	// root (filepath.Abs): the join is a concatenation, and saves the
	// Clean that filepath.Join would run on every request.
	if p == "/" {
		return d.root, nil
	}
	return strings.TrimSuffix(d.root, string(filepath.Separator)) + filepath.FromSlash(p), nil
}

// fullPathNotRoot is fullPath for operations that make no sense on the
// root folder itself (writing it, moving it, deleting the whole storage).
func (d *Filesystem) fullPathNotRoot(op, p string) (string, error) {
	if p == "/" {
		return "", fmt.Errorf("filesystem: %s %s: refusing to %s the root folder", op, p, op)
	}
	return d.fullPath(p)
}

// isNotExist also counts ENOTDIR: "/a/b" with "/a" a file is simply not
// there, as an S3 key below another key would not be.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// fail turns an OS error about p into the driver's error.
func fail(op, p string, err error) error {
	if isNotExist(err) {
		return NotFound(p)
	}
	return fmt.Errorf("filesystem: %s %s: %w", op, p, err)
}

// GetContent reads a whole file.
func (d *Filesystem) GetContent(ctx context.Context, p string) ([]byte, error) {
	full, err := d.fullPath(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := readFile(full)
	if err != nil {
		return nil, fail("read", p, err)
	}
	return b, nil
}

// PutContent replaces a file atomically: the bytes go to a temporary file
// in the same folder (so the rename never crosses a mount), which is
// synced and renamed over the path. Two concurrent puts each rename a
// whole file, so the last rename wins and nothing is ever torn.
func (d *Filesystem) PutContent(ctx context.Context, p string, content []byte) error {
	full, err := d.fullPathNotRoot("write", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := inParent(full, func() error { return writeAtomic(full, content) }); err != nil {
		d.pruneEmpty(p) // folders made for a write that did not happen
		return fmt.Errorf("filesystem: write %s: %w", p, err)
	}
	return nil
}

func writeAtomic(full string, content []byte) (err error) {
	dir := filepath.Dir(full)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes 0600 files; set the mode before the rename so the
	// file never appears at its path unreadable to another registry user.
	if err = f.Chmod(fileMode); err != nil {
		return err
	}
	if _, err = f.Write(content); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), full); err != nil {
		return err
	}
	return syncDir(dir)
}

// inParent runs create once full's folder exists, and again if the folder
// vanished meanwhile: Delete prunes folders it leaves empty, and may do so
// between our mkdir and our create. create must return an fs.ErrNotExist
// error only when it is worth retrying.
func inParent(full string, create func() error) error {
	var err error
	for range mkdirRetries {
		if err = mkdirAll(filepath.Dir(full)); err == nil {
			if err = create(); err == nil {
				return nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// mkdirAll is os.MkdirAll with a mode the umask does not change.
func mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if fi.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another writer was first; if it is a file, the create
			// that follows fails with ENOTDIR.
			return nil
		}
		return err
	}
	return os.Chmod(dir, dirMode)
}

// syncDir makes a folder's entries durable: without it a power loss can
// undo a rename that was already acknowledged to a client.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Reader opens a file at offset.
func (d *Filesystem) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	f, fi, err := d.open(ctx, "read", p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > fi.Size {
		f.Close()
		return nil, InvalidOffset(p, offset, fi.Size)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fail("read", p, err)
	}
	return f, nil
}

// Open returns the *os.File itself, so net/http serves ranges and uses
// sendfile.
func (d *Filesystem) Open(ctx context.Context, p string) (SeekableFile, FileInfo, error) {
	f, fi, err := d.open(ctx, "open", p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	return f, fi, nil
}

func (d *Filesystem) open(ctx context.Context, op, p string) (*os.File, FileInfo, error) {
	full, err := d.fullPath(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, FileInfo{}, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, FileInfo{}, fail(op, p, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, FileInfo{}, fail(op, p, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, FileInfo{}, fmt.Errorf("filesystem: %s %s: is a folder", op, p)
	}
	return f, FileInfo{Path: p, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Writer writes straight to the final path, as Distribution does for
// upload data under _uploads: a chunked upload appends across requests,
// and a later Writer(append=true) continues where the last one stopped.
// Appending to a missing file is ErrNotFound rather than a fresh file, so
// an upload purged meanwhile is noticed instead of resumed at offset 0.
func (d *Filesystem) Writer(ctx context.Context, p string, append bool) (FileWriter, error) {
	full, err := d.fullPathNotRoot("write", p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if append {
		f, err := os.OpenFile(full, os.O_WRONLY, 0)
		if err != nil {
			return nil, fail("write", p, err)
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fail("write", p, err)
		}
		return newFileWriter(d, f, p, full, size), nil
	}
	var f *os.File
	err = inParent(full, func() error {
		var err error
		f, err = os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
		return err
	})
	if err != nil {
		d.pruneEmpty(p)
		return nil, fmt.Errorf("filesystem: write %s: %w", p, err)
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("filesystem: write %s: %w", p, err)
	}
	return newFileWriter(d, f, p, full, 0), nil
}

type writerState int

const (
	writerOpen writerState = iota
	writerClosed
	writerCommitted
	writerCancelled
)

func (s writerState) String() string {
	return [...]string{"open", "closed", "committed", "cancelled"}[s]
}

// fileWriter buffers writes (request bodies arrive in small pieces) and
// tracks its state so a misuse is an error, not silent data loss.
type fileWriter struct {
	d    *Filesystem
	path string
	full string

	mu    sync.Mutex
	f     *os.File
	bw    *bufio.Writer
	size  int64
	state writerState
}

func newFileWriter(d *Filesystem, f *os.File, p, full string, size int64) *fileWriter {
	return &fileWriter{d: d, path: p, full: full, f: f, bw: bufio.NewWriterSize(f, 64<<10), size: size}
}

func (w *fileWriter) errState(op string) error {
	return fmt.Errorf("filesystem: %s %s: writer already %s", op, w.path, w.state)
}

func (w *fileWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return 0, w.errState("write")
	}
	n, err := w.bw.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("filesystem: write %s: %w", w.path, err)
	}
	return n, nil
}

func (w *fileWriter) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Close keeps what was written (flushed, not synced); closing a writer
// that is already closed, committed or cancelled does nothing, so
// "defer w.Close()" is always safe.
func (w *fileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return nil
	}
	w.state = writerClosed
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filesystem: close %s: %w", w.path, err)
	}
	return nil
}

// Commit flushes and fsyncs the file, and its folder for a new entry.
func (w *fileWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return w.errState("commit")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Whatever happens next, the file handle is gone: the writer is done.
	w.state = writerClosed
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.full))
	}
	if err != nil {
		return fmt.Errorf("filesystem: commit %s: %w", w.path, err)
	}
	w.state = writerCommitted
	return nil
}

// Cancel removes the file, including what earlier sessions appended: it
// abandons the whole upload. It works on a closed writer too.
func (w *fileWriter) Cancel(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writerCommitted:
		return w.errState("cancel")
	case writerCancelled:
		return nil
	case writerOpen:
		w.f.Close()
	}
	w.state = writerCancelled
	if err := os.Remove(w.full); err != nil && !isNotExist(err) {
		return fmt.Errorf("filesystem: cancel %s: %w", w.path, err)
	}
	w.d.pruneEmpty(w.path)
	return nil
}

// Stat describes a file or folder. Folders have size 0, as on S3.
func (d *Filesystem) Stat(ctx context.Context, p string) (FileInfo, error) {
	full, err := d.fullPath(p)
	if err != nil {
		return FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	st, err := os.Stat(full)
	if err != nil {
		return FileInfo{}, fail("stat", p, err)
	}
	return fileInfo(p, st), nil
}

func fileInfo(p string, st fs.FileInfo) FileInfo {
	fi := FileInfo{Path: p, ModTime: st.ModTime(), IsDir: st.IsDir()}
	if !fi.IsDir {
		fi.Size = st.Size()
	}
	return fi
}

// List returns a folder's children, sorted, as full driver paths.
func (d *Filesystem) List(ctx context.Context, p string) ([]string, error) {
	full, err := d.fullPath(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(full) // sorted by name
	if err != nil {
		// ReadDir on a file fails with ENOTDIR, as it does below a
		// file: only the first is "not a folder", the other "not found".
		if st, serr := os.Stat(full); serr == nil && !st.IsDir() {
			return nil, fmt.Errorf("filesystem: list %s: not a folder", p)
		}
		return nil, fail("list", p, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, path.Join(p, e.Name()))
		}
	}
	return out, nil
}

// Move renames src to dst; rename(2) replaces dst atomically.
func (d *Filesystem) Move(ctx context.Context, src, dst string) error {
	srcFull, err := d.fullPathNotRoot("move", src)
	if err != nil {
		return err
	}
	dstFull, err := d.fullPathNotRoot("move", dst)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Check before creating dst's folders for nothing.
	if _, err := os.Lstat(srcFull); err != nil {
		return fail("move", src, err)
	}
	err = inParent(dstFull, func() error {
		// Checked inside the retry so a missing source is told apart
		// from a destination folder pruned under us (both ENOENT).
		if _, err := os.Lstat(srcFull); err != nil {
			if isNotExist(err) {
				return NotFound(src)
			}
			return err
		}
		return os.Rename(srcFull, dstFull)
	})
	if err == nil {
		err = syncDir(filepath.Dir(dstFull))
	}
	if err != nil {
		d.pruneEmpty(dst) // folders made for a move that did not happen
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("filesystem: move %s to %s: %w", src, dst, err)
	}
	d.pruneEmpty(src)
	return nil
}

// Delete removes a file, or a folder and all below it. A symlink is
// removed, never followed, so nothing outside the root is deleted.
func (d *Filesystem) Delete(ctx context.Context, p string) error {
	full, err := d.fullPathNotRoot("delete", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Lstat(full)
	if err != nil {
		return fail("delete", p, err)
	}
	if st.IsDir() {
		err = os.RemoveAll(full)
	} else {
		err = os.Remove(full)
	}
	if err != nil {
		return fail("delete", p, err)
	}
	d.pruneEmpty(p)
	return nil
}

// pruneEmpty removes the folders above p that are now empty, up to but
// never including the root; rmdir refuses a folder that is not empty, so
// it stops at the first one still in use. Distribution leaves empty
// folders behind, but every empty _uploads/<id>, blobs/<xx>/<hex> or
// repository folder then costs a readdir in each List and Walk, and an
// emptied repository still looks like one to the catalog and to GC.
// S3 has no empty folders either, so both drivers show the same tree.
func (d *Filesystem) pruneEmpty(p string) {
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		if syscall.Rmdir(filepath.Join(d.root, filepath.FromSlash(dir))) != nil {
			return
		}
	}
}

// Walk visits every file and folder below p depth first, each folder's
// entries sorted by name and a folder right before its contents (the
// order of filepath.WalkDir). Entries removed while walking are skipped,
// so a walk can run beside deletes (GC, upload purging).
func (d *Filesystem) Walk(ctx context.Context, p string, fn func(FileInfo) error) error {
	full, err := d.fullPath(p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(full)
	if err != nil {
		return fail("walk", p, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("filesystem: walk %s: not a folder", p)
	}
	return d.walk(ctx, p, full, fn)
}

func (d *Filesystem) walk(ctx context.Context, p, full string, fn func(FileInfo) error) error {
	entries, err := os.ReadDir(full)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fail("walk", p, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		childP, childFull := path.Join(p, e.Name()), filepath.Join(full, e.Name())
		// Stat, not Lstat: follow symlinks as Distribution does, for
		// roots where an operator linked a folder to another disk.
		st, err := os.Stat(childFull)
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return fail("walk", childP, err)
		}
		fi := fileInfo(childP, st)
		if err := fn(fi); err != nil {
			// ErrSkipDir on a file has nothing to skip.
			if errors.Is(err, ErrSkipDir) {
				continue
			}
			return err
		}
		if fi.IsDir {
			if err := d.walk(ctx, childP, childFull, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
