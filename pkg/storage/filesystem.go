package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
// on-disk layout: driver path p is the file rootDir+p. It never follows
// a symbolic link below its root (see fsroot.go): a path that is, or
// goes through, one fails with ErrSymlink, and Walk reports the link
// without going below it. Besides the open root and whether Check has
// seen it, it holds no state, so it is safe for concurrent use;
// atomicity comes from rename(2).
type Filesystem struct {
	dir heldRoot
	// seen: Check found the root once, so its absence now is an outage.
	seen atomic.Bool
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
	return &Filesystem{dir: heldRoot{path: root}}, nil
}

// Name is the driver's name in config.yml.
func (d *Filesystem) Name() string { return "filesystem" }

// relPath checks a driver path and returns it relative to the root:
// "." for the root itself.
func relPath(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	// A caller must not be able to name, and so overwrite or delete, a
	// temporary file of a write in flight.
	if strings.Contains(p, "/"+tempPrefix) {
		return "", fmt.Errorf("%w %q: %s names are reserved for temporary files", ErrInvalidPath, p, tempPrefix)
	}
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// relPathNotRoot is relPath for operations that make no sense on the
// root folder itself (writing it, moving it, deleting the whole storage).
func relPathNotRoot(op, p string) (string, error) {
	if p == "/" {
		return "", fmt.Errorf("filesystem: %s %s: refusing to %s the root folder", op, p, op)
	}
	return relPath(p)
}

// splitRel is the folder and name of rel, which is not ".".
func splitRel(rel string) (dir, name string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ".", rel
	}
	return rel[:i], rel[i+1:]
}

// osName is the file name of p, for *os.File values and messages.
func (d *Filesystem) osName(p string) string {
	return strings.TrimSuffix(d.dir.path, string(filepath.Separator)) + filepath.FromSlash(p)
}

// open opens rel below the root, never through a symbolic link (see
// openBeneath). A root deleted and made anew is opened again.
func (d *Filesystem) open(rel string, flags int, mode uint32) (int, error) {
	for try := 0; ; try++ {
		root, err := d.dir.file(false)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // ENOENT for a root not made yet, as for any path
			}
			return -1, err
		}
		fd, err := openBeneath(int(root.Fd()), rel, flags, mode)
		runtime.KeepAlive(root)
		if err == unix.ENOENT && try == 0 && d.dir.forgetIfDeleted(root) {
			continue
		}
		return fd, err
	}
}

// openDir opens folder rel.
func (d *Filesystem) openDir(rel string) (int, error) {
	return d.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
}

// isNotExist also counts ENOTDIR: "/a/b" with "/a" a file is simply not
// there, as an S3 key below another key would not be.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// fail turns an OS error about p into the driver's error.
func fail(op, p string, err error) error {
	switch {
	case isNotExist(err):
		return NotFound(p)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("filesystem: %s %s: %w", op, p, ErrSymlink)
	}
	return fmt.Errorf("filesystem: %s %s: %w", op, p, err)
}

// failWrite is fail for writes: a folder missing or a file in the way
// of one is a failure to write, not a path not found.
func failWrite(op, p string, err error) error {
	return fmt.Errorf("filesystem: %s %s: %w", op, p, failErr(err))
}

// GetContent reads a whole file.
func (d *Filesystem) GetContent(ctx context.Context, p string) ([]byte, error) {
	rel, err := relPath(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := d.open(rel, unix.O_RDONLY, 0)
	if err != nil {
		return nil, fail("read", p, err)
	}
	b, err := readAll(fd)
	unix.Close(fd)
	if err != nil {
		return nil, fail("read", p, err)
	}
	return b, nil
}

// PutContent replaces a file atomically: the bytes go to a temporary file
// in the same folder (so the rename never crosses a mount), which is
// synced and renamed over the path. Two concurrent puts each rename a
// whole file, so the last rename wins and nothing is ever torn. A
// symbolic link at the path is replaced, as rename(2) does; what it
// pointed at is not touched.
func (d *Filesystem) PutContent(ctx context.Context, p string, content []byte) error {
	return d.replace(ctx, p, func(f *os.File) error {
		_, err := f.Write(content)
		return err
	})
}

// replace writes the file at p atomically, as PutContent describes:
// fill writes the temporary file.
func (d *Filesystem) replace(ctx context.Context, p string, fill func(*os.File) error) error {
	rel, err := relPathNotRoot("write", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = d.inParent(rel, func(dirfd int, name string) error {
		tmp, err := createTempFill(dirfd, fill)
		if err != nil {
			return err
		}
		if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
			unix.Unlinkat(dirfd, tmp, 0)
			return err
		}
		return unix.Fsync(dirfd)
	})
	if err != nil {
		d.pruneEmpty(p) // folders made for a write that did not happen
		return failWrite("write", p, err)
	}
	return nil
}

// createTemp writes content to a new temporary file in folder dirfd,
// synced, with fileMode, and returns its name.
func createTemp(dirfd int, content []byte) (string, error) {
	return createTempFill(dirfd, func(f *os.File) error {
		_, err := f.Write(content)
		return err
	})
}

// createTempFill is createTemp with the content written by fill.
func createTempFill(dirfd int, fill func(*os.File) error) (string, error) {
	for {
		name := tempPrefix + strconv.FormatUint(rand.Uint64(), 36)
		fd, err := openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := fillSynced(os.NewFile(uintptr(fd), name), fill); err != nil {
			unix.Unlinkat(dirfd, name, 0)
			return "", err
		}
		return name, nil
	}
}

// fillSynced fills a fresh temporary file, with the mode other registry
// users can read, and closes it. The file is made 0600 and chmodded
// before anyone sees it at its path, whatever the umask.
func fillSynced(f *os.File, fill func(*os.File) error) error {
	err := f.Chmod(fileMode)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// inParent runs create in rel's folder, once that exists, and again if
// the folder vanished meanwhile: Delete prunes folders it leaves empty,
// and may do so between our mkdir and our create. create gets the open
// folder and rel's name in it, and must return ENOENT only when it is
// worth retrying.
func (d *Filesystem) inParent(rel string, create func(dirfd int, name string) error) error {
	dir, name := splitRel(rel)
	var err error
	for range mkdirRetries {
		var dirfd int
		if dirfd, err = d.mkdirAll(dir); err == nil {
			err = create(dirfd, name)
			unix.Close(dirfd)
			if err == nil {
				return nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// mkdirAll opens folder rel, making it and its missing parents first
// with dirMode, whatever the umask.
func (d *Filesystem) mkdirAll(rel string) (int, error) {
	fd, err := d.openDir(rel)
	if err != unix.ENOENT {
		return fd, err // open, or a file or a symbolic link in the way
	}
	if rel == "." {
		if _, err := d.dir.file(true); err != nil {
			return -1, err
		}
		return d.openDir(rel)
	}
	dir, name := splitRel(rel)
	dirfd, err := d.mkdirAll(dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dirfd)
	// EEXIST: another writer was first; if it made a file, opening it
	// as a folder fails with ENOTDIR.
	err = unix.Mkdirat(dirfd, name, uint32(dirMode))
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	made := err == nil
	fd, err = openDirAt(dirfd, name)
	if err == nil && made {
		// Through the open folder: a chmod by name would follow a link
		// swapped in meanwhile.
		err = unix.Fchmod(fd, uint32(dirMode))
		if err != nil {
			unix.Close(fd)
		}
	}
	return fd, err
}

// Reader opens a file at offset.
func (d *Filesystem) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	f, fi, err := d.openFile(ctx, "read", p)
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
	f, fi, err := d.openFile(ctx, "open", p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	return f, fi, nil
}

func (d *Filesystem) openFile(ctx context.Context, op, p string) (*os.File, FileInfo, error) {
	rel, err := relPath(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, FileInfo{}, err
	}
	fd, err := d.open(rel, unix.O_RDONLY, 0)
	if err != nil {
		return nil, FileInfo{}, fail(op, p, err)
	}
	f := os.NewFile(uintptr(fd), d.osName(p))
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
	rel, err := relPathNotRoot("write", p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if append {
		fd, err := d.open(rel, unix.O_WRONLY, 0)
		if err != nil {
			return nil, fail("write", p, err)
		}
		f := os.NewFile(uintptr(fd), d.osName(p))
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fail("write", p, err)
		}
		return newFileWriter(d, f, p, rel, size), nil
	}
	var f *os.File
	err = d.inParent(rel, func(dirfd int, name string) error {
		fd, err := openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW, uint32(fileMode))
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), d.osName(p))
		return nil
	})
	if err != nil {
		d.pruneEmpty(p)
		return nil, failWrite("write", p, err)
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("filesystem: write %s: %w", p, err)
	}
	return newFileWriter(d, f, p, rel, 0), nil
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
	rel  string

	mu    sync.Mutex
	f     *os.File
	bw    *bufio.Writer
	size  int64
	state writerState
}

func newFileWriter(d *Filesystem, f *os.File, p, rel string, size int64) *fileWriter {
	return &fileWriter{d: d, path: p, rel: rel, f: f, bw: bufio.NewWriterSize(f, 64<<10), size: size}
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
		err = w.d.syncDir(w.rel)
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
	if err := w.d.remove(w.rel, 0); err != nil && !isNotExist(err) {
		return fail("cancel", w.path, err)
	}
	w.d.pruneEmpty(w.path)
	return nil
}

// syncDir makes the entries of rel's folder durable: without it a power
// loss can undo a rename that was already acknowledged to a client.
func (d *Filesystem) syncDir(rel string) error {
	dir, _ := splitRel(rel)
	fd, err := d.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// remove unlinks rel with unlinkat's flags: a file, a symbolic link
// itself, or (AT_REMOVEDIR) an empty folder.
func (d *Filesystem) remove(rel string, flags int) error {
	dir, name := splitRel(rel)
	fd, err := d.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Unlinkat(fd, name, flags)
}

// lstat describes rel itself: a symbolic link is ELOOP.
func (d *Filesystem) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "." {
		fd, err := d.openDir(rel)
		if err != nil {
			return st, err
		}
		defer unix.Close(fd)
		return st, unix.Fstat(fd, &st)
	}
	dir, name := splitRel(rel)
	fd, err := d.openDir(dir)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, lstatAt(fd, name, &st)
}

// lstatAt is fstatat without following a link; a link is ELOOP.
func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	if err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return nil
}

// Stat describes a file or folder. Folders have size 0, as on S3.
func (d *Filesystem) Stat(ctx context.Context, p string) (FileInfo, error) {
	rel, err := relPath(p)
	if err != nil {
		return FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	st, err := d.lstat(rel)
	if err != nil {
		return FileInfo{}, fail("stat", p, err)
	}
	return fileInfo(p, &st), nil
}

func fileInfo(p string, st *unix.Stat_t) FileInfo {
	fi := FileInfo{Path: p, ModTime: time.Unix(st.Mtim.Unix()), IsDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		fi.Symlink = true
	default:
		fi.Size = st.Size
	}
	return fi
}

// List returns a folder's children, sorted, as full driver paths. A
// symbolic link is listed as it is there; reading below it fails.
func (d *Filesystem) List(ctx context.Context, p string) ([]string, error) {
	rel, err := relPath(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := d.openDir(rel)
	if err != nil {
		return nil, d.failDir("list", p, rel, err)
	}
	names, err := readDirNames(fd)
	unix.Close(fd)
	if err != nil {
		return nil, fail("list", p, err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasPrefix(n, tempPrefix) {
			out = append(out, path.Join(p, n))
		}
	}
	return out, nil
}

// failDir is fail for opening folder rel: ENOTDIR is "not a folder" when
// rel is a file, and "not found" when a file is above it.
func (d *Filesystem) failDir(op, p, rel string, err error) error {
	if err == unix.ENOTDIR {
		if st, serr := d.lstat(rel); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("filesystem: %s %s: not a folder", op, p)
		}
	}
	return fail(op, p, err)
}

// Move renames src to dst; rename(2) replaces dst atomically (a symbolic
// link at dst itself, not what it points at). A link at src is not
// moved: it would land where a file is expected.
func (d *Filesystem) Move(ctx context.Context, src, dst string) error {
	srcRel, err := relPathNotRoot("move", src)
	if err != nil {
		return err
	}
	dstRel, err := relPathNotRoot("move", dst)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	srcDir, srcName := splitRel(srcRel)
	srcfd, err := d.openDir(srcDir)
	if err != nil {
		return fail("move", src, err)
	}
	defer unix.Close(srcfd)
	var st unix.Stat_t
	// Check before creating dst's folders for nothing.
	if err := lstatAt(srcfd, srcName, &st); err != nil {
		return fail("move", src, err)
	}
	err = d.inParent(dstRel, func(dstfd int, dstName string) error {
		// Checked inside the retry so a missing source is told apart
		// from a destination folder pruned under us (both ENOENT).
		if err := lstatAt(srcfd, srcName, &st); err != nil {
			return fail("move", src, err)
		}
		if err := unix.Renameat(srcfd, srcName, dstfd, dstName); err != nil {
			return err
		}
		return unix.Fsync(dstfd)
	})
	if err != nil {
		d.pruneEmpty(dst) // folders made for a move that did not happen
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSymlink) {
			return err
		}
		return fmt.Errorf("filesystem: move %s to %s: %w", src, dst, failErr(err))
	}
	d.pruneEmpty(src)
	return nil
}

// failErr is ErrSymlink for ELOOP, the error itself otherwise.
func failErr(err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return ErrSymlink
	}
	return err
}

// Delete removes a file, or a folder and all below it. A symbolic link
// is removed itself, never followed, so nothing outside the root is
// deleted; a path below one fails with ErrSymlink.
func (d *Filesystem) Delete(ctx context.Context, p string) error {
	rel, err := relPathNotRoot("delete", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, name := splitRel(rel)
	fd, err := d.openDir(dir)
	if err != nil {
		return fail("delete", p, err)
	}
	err = removeAllAt(fd, name)
	unix.Close(fd)
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
		if d.remove(dir[1:], unix.AT_REMOVEDIR) != nil {
			return
		}
	}
}

// Walk visits every file and folder below p depth first, each folder's
// entries sorted by name and a folder right before its contents (the
// order of filepath.WalkDir). A symbolic link is visited as an entry
// with Symlink set and never followed. Entries removed while walking
// are skipped, so a walk can run beside deletes (GC, upload purging).
func (d *Filesystem) Walk(ctx context.Context, p string, fn func(FileInfo) error) error {
	rel, err := relPath(p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := d.openDir(rel)
	if err != nil {
		return d.failDir("walk", p, rel, err)
	}
	defer unix.Close(fd)
	return d.walk(ctx, p, fd, fn)
}

// walk walks the open folder fd, driver path p. Each entry is looked
// up in it by name, so nothing below a link is ever reached.
func (d *Filesystem) walk(ctx context.Context, p string, fd int, fn func(FileInfo) error) error {
	names, err := readDirNames(fd)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fail("walk", p, err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		childP := path.Join(p, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if isNotExist(err) {
				continue
			}
			return fail("walk", childP, err)
		}
		fi := fileInfo(childP, &st)
		if err := fn(fi); err != nil {
			// ErrSkipDir on a file has nothing to skip.
			if errors.Is(err, ErrSkipDir) {
				continue
			}
			return err
		}
		if !fi.IsDir {
			continue
		}
		child, err := openDirAt(fd, name)
		if err != nil {
			// Gone, or replaced by a file or a link since the stat.
			if isNotExist(err) || err == unix.ELOOP {
				continue
			}
			return fail("walk", childP, err)
		}
		err = d.walk(ctx, childP, child, fn)
		unix.Close(child)
		if err != nil {
			return err
		}
	}
	return nil
}

// LocalFolders marks the filesystem's folders as real and local (see
// the LocalFolders interface).
func (d *Filesystem) LocalFolders() {}
