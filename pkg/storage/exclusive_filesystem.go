package storage

import (
	"context"
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

var _ ExclusiveCreator = (*Filesystem)(nil)

// CreateExclusive writes content to a temporary file in the path's folder,
// syncs it and link(2)s it to the path. link fails with EEXIST when
// anything is there, atomically (also on NFS, where O_EXCL long was not),
// and the name appears with the whole, durable content, so no reader ever
// sees a part of it, as it could between an O_EXCL create and its write.
// The temporary name is removed either way.
func (d *Filesystem) CreateExclusive(ctx context.Context, p string, content []byte) error {
	rel, err := relPathNotRoot("create", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = d.inParent(rel, func(dirfd int, name string) error {
		tmp, err := createTemp(dirfd, content)
		if err != nil {
			return err
		}
		// Whether the link was made or not, the temporary name goes:
		// the content lives on under name when it was.
		defer unix.Unlinkat(dirfd, tmp, 0)
		if err := unix.Linkat(dirfd, tmp, dirfd, name, 0); err != nil {
			return err
		}
		return unix.Fsync(dirfd)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return Exists(p)
	default:
		d.pruneEmpty(p) // folders made for a create that did not happen
		return failWrite("create", p, err)
	}
}
