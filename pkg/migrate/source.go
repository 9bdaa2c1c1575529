package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"regctl/pkg/storage"
)

// sourceError is a failure to read a source file: trying the copy
// again would not help.
type sourceError struct{ error }

func (e sourceError) Unwrap() error { return e.error }

// srcFile is an open source file, read in sections, several at once:
// straight from the open file where it reads at any offset (the
// filesystem's), else with a ranged read of the driver each.
type srcFile struct {
	d    storage.Driver
	p    string
	ra   io.ReaderAt // nil: ranged reads
	c    io.Closer
	mu   sync.Mutex
	open []*rangeReader // to close
}

// open opens a source file through the driver, which never follows a
// symbolic link.
func (e *engine) open(ctx context.Context, rel string) (*srcFile, storage.FileInfo, error) {
	p := driverPath(rel)
	if e.opener != nil {
		f, fi, err := e.opener.Open(ctx, p)
		if err != nil {
			return nil, fi, sourceError{err}
		}
		if ra, ok := f.(io.ReaderAt); ok {
			return &srcFile{ra: ra, c: f}, fi, nil
		}
		f.Close()
	}
	fi, err := e.src.Stat(ctx, p)
	if err == nil && fi.IsDir {
		err = fmt.Errorf("%s: is a folder", p)
	}
	if err != nil {
		return nil, fi, sourceError{err}
	}
	return &srcFile{d: e.src, p: p}, fi, nil
}

// section reads n bytes from off, and again from the start after a
// Seek (a retried request).
func (f *srcFile) section(ctx context.Context, off, n int64) io.ReadSeeker {
	if f.ra != nil {
		return io.NewSectionReader(f.ra, off, n)
	}
	r := &rangeReader{ctx: ctx, d: f.d, p: f.p, off: off, n: n}
	f.mu.Lock()
	f.open = append(f.open, r)
	f.mu.Unlock()
	return r
}

// Close closes the file and the ranged reads of its sections.
func (f *srcFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, r := range f.open {
		errs = append(errs, r.Close())
	}
	if f.c != nil {
		errs = append(errs, f.c.Close())
	}
	return errors.Join(errs...)
}

// rangeReader reads n bytes of p from off through the driver's Reader,
// opened on the first Read and anew after a Seek.
type rangeReader struct {
	ctx         context.Context
	d           storage.Driver
	p           string
	off, n, pos int64
	r           io.ReadCloser
}

func (r *rangeReader) Read(b []byte) (int, error) {
	if r.pos >= r.n {
		return 0, io.EOF
	}
	if r.r == nil {
		rc, err := r.d.Reader(r.ctx, r.p, r.off+r.pos)
		if err != nil {
			return 0, sourceError{err}
		}
		r.r = rc
	}
	b = b[:min(int64(len(b)), r.n-r.pos)]
	k, err := r.r.Read(b)
	r.pos += int64(k)
	if errors.Is(err, io.EOF) && r.pos < r.n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = sourceError{err}
	}
	return k, err
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	pos := offset
	switch whence {
	case io.SeekCurrent:
		pos += r.pos
	case io.SeekEnd:
		pos += r.n
	}
	if pos < 0 {
		return 0, errors.New("seek before the start")
	}
	if pos != r.pos {
		r.Close()
		r.pos = pos
	}
	return pos, nil
}

func (r *rangeReader) Close() error {
	if r.r == nil {
		return nil
	}
	err := r.r.Close()
	r.r = nil
	return err
}
