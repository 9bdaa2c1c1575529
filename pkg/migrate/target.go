package migrate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"regctl/pkg/storage"
)

// object is what a listing tells about one target object.
type object struct {
	path string // its driver path, or a stray's (see storage.Object)
	size int64
	md5  string // lowercase hex, "" when the listing does not tell
}

// marker reports whether a target object is an empty "folder/" object,
// as AWS DataSync and some consoles leave: registries have shown them
// as tags with an empty name.
func marker(p string, size int64) bool { return strings.HasSuffix(p, "/") && size == 0 }

// target is the storage copied into, with the capabilities a bulk copy
// uses where the driver has them; without one, plain driver calls do
// the same work, in more requests.
type target struct {
	d       storage.Driver
	lister  storage.ObjectLister    // else Walk
	putter  storage.VerifiedPutter  // else PutContent or Writer
	multi   storage.MultipartWriter // else one put per file
	deleter storage.BatchDeleter    // else Delete each
}

// newTarget looks d's capabilities up, on a copy of d with a pool of
// conns connections where it has one.
func newTarget(d storage.Driver, conns int) *target {
	if cp, ok := storage.As[storage.ConnectionPool](d); ok {
		d = cp.WithConnections(conns)
	}
	t := &target{d: d}
	t.lister, _ = storage.As[storage.ObjectLister](d)
	t.putter, _ = storage.As[storage.VerifiedPutter](d)
	t.multi, _ = storage.As[storage.MultipartWriter](d)
	t.deleter, _ = storage.As[storage.BatchDeleter](d)
	return t
}

// listLevel lists one folder: the objects right in it (by name; "" is
// a marker of the folder itself) and its subfolders.
func (t *target) listLevel(ctx context.Context, rel string) (map[string]object, []string, error) {
	files := map[string]object{}
	if t.lister == nil {
		fis, dirs, err := level(ctx, t.d, rel)
		if err != nil {
			return nil, nil, fmt.Errorf("target: %w", err)
		}
		for name, fi := range fis {
			files[name] = object{path: fi.Path, size: fi.Size}
		}
		return files, dirs, nil
	}
	prefix := driverPath(rel) + "/"
	var dirs []string
	err := t.lister.ListObjects(ctx, driverPath(rel), true, func(o storage.Object) error {
		name := strings.TrimPrefix(o.Path, prefix)
		if o.IsDir {
			dirs = append(dirs, name)
			return nil
		}
		files[name] = object{path: o.Path, size: o.Size, md5: o.MD5}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("target: %w", err)
	}
	return files, dirs, nil
}

// listTree calls fn for every object below folder rel, with its path
// relative to the root: a flat listing where the driver has one, so
// nothing needs a request per object.
func (t *target) listTree(ctx context.Context, rel string, fn func(rel string, o object)) error {
	var err error
	if t.lister != nil {
		err = t.lister.ListObjects(ctx, driverPath(rel), false, func(o storage.Object) error {
			fn(relOf(o.Path), object{path: o.Path, size: o.Size, md5: o.MD5})
			return nil
		})
	} else {
		err = t.d.Walk(ctx, driverPath(rel), func(fi storage.FileInfo) error {
			if !fi.IsDir {
				fn(relOf(fi.Path), object{path: fi.Path, size: fi.Size})
			}
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}

// level reads one folder of d: its files (symbolic links among them,
// with Symlink set) by name, and its folders. A missing folder is empty.
func level(ctx context.Context, d storage.Driver, rel string) (map[string]storage.FileInfo, []string, error) {
	files := map[string]storage.FileInfo{}
	var dirs []string
	err := d.Walk(ctx, driverPath(rel), func(fi storage.FileInfo) error {
		name := path.Base(fi.Path)
		if fi.IsDir {
			dirs = append(dirs, name)
			return storage.ErrSkipDir
		}
		files[name] = fi
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return files, dirs, nil
}

// put stores body (size bytes, MD5 sum) at rel in one write: checked
// by the backend where it can (VerifiedPutter), else hashed here as it
// goes.
func (t *target) put(ctx context.Context, rel string, body io.ReadSeeker, size int64, sum []byte) error {
	p := driverPath(rel)
	if t.putter != nil {
		return t.putter.PutVerified(ctx, p, body, size, sum)
	}
	if size <= smallFile {
		b, err := io.ReadAll(io.LimitReader(body, size+1))
		if err != nil {
			return err
		}
		if err := checkSum(b, size, sum); err != nil {
			return err
		}
		return t.d.PutContent(ctx, p, b)
	}
	w, err := t.d.Writer(ctx, p, false)
	if err != nil {
		return err
	}
	defer w.Close()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, size+1))
	if err == nil && (n != size || !bytes.Equal(h.Sum(nil), sum)) {
		err = fmt.Errorf("read %d bytes with MD5 %x, not %d with %x: the source changed", n, h.Sum(nil), size, sum)
	}
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		_ = w.Cancel(context.WithoutCancel(ctx))
	}
	return err
}

// checkSum checks that b is size bytes with MD5 sum.
func checkSum(b []byte, size int64, sum []byte) error {
	if got := md5.Sum(b); int64(len(b)) != size || !bytes.Equal(got[:], sum) {
		return fmt.Errorf("read %d bytes with MD5 %x, not %d with %x: the source changed", len(b), got, size, sum)
	}
	return nil
}

// get reads a whole object.
func (t *target) get(ctx context.Context, rel string) (io.ReadCloser, error) {
	return t.d.Reader(ctx, driverPath(rel), 0)
}

// getSmall reads a whole object of at most limit bytes.
func (t *target) getSmall(ctx context.Context, rel string, limit int64) ([]byte, error) {
	body, err := t.get(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, limit+1))
}

// uploads lists the multipart writes in progress below the root, by
// path: a killed run's copies of large blobs, which a new run resumes.
func (t *target) uploads(ctx context.Context) (map[string][]storage.Upload, error) {
	found := map[string][]storage.Upload{}
	if t.multi == nil {
		return found, nil
	}
	ups, err := t.multi.ListUploads(ctx, storage.Root)
	if err != nil {
		return nil, err
	}
	for _, u := range ups {
		if excluded(relOf(u.Path)) {
			continue // the registry's own uploads
		}
		found[u.Path] = append(found[u.Path], u)
	}
	return found, nil
}

// deleteMany deletes target objects by path: in as few requests as the
// driver can (BatchDeleter), else one Delete each. Paths already gone
// are no error.
func (t *target) deleteMany(ctx context.Context, paths []string) error {
	if t.deleter != nil {
		return t.deleter.DeleteMany(ctx, paths)
	}
	var errs []error
	for _, p := range paths {
		if err := t.d.Delete(ctx, p); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// md5Of hashes r.
func md5Of(r io.Reader) ([]byte, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// sameContent compares small content with an object: by the MD5 the
// listing told, else by reading it.
func (t *target) sameContent(ctx context.Context, rel string, o object, content []byte) (bool, error) {
	if int64(len(content)) != o.size {
		return false, nil
	}
	if o.md5 != "" {
		sum := md5.Sum(content)
		return hex.EncodeToString(sum[:]) == o.md5, nil
	}
	got, err := t.getSmall(ctx, rel, o.size)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, content), nil
}
