package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"os"
)

// Describe is the root folder.
func (d *Filesystem) Describe() string { return d.dir.path }

// PutVerified writes body as PutContent does, through a temporary file
// renamed into place, once its size and MD5 are checked: a copy into a
// filesystem is as safe as one into a bucket, and not held in memory.
func (d *Filesystem) PutVerified(ctx context.Context, p string, body io.ReadSeeker, size int64, sum []byte) error {
	return d.replace(ctx, p, func(f *os.File) error {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := md5.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, size+1))
		switch {
		case err != nil:
			return err
		case n != size:
			return fmt.Errorf("got %d bytes, not %d", n, size)
		case !bytes.Equal(h.Sum(nil), sum):
			return fmt.Errorf("the content's MD5 is %x, not %x", h.Sum(nil), sum)
		}
		return nil
	})
}
