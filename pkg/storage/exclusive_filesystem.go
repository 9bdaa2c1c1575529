package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

var _ ExclusiveCreator = (*Filesystem)(nil)

// CreateExclusive writes content to a temporary file in the path's folder,
// syncs it and link(2)s it to the path. link fails with EEXIST when
// anything is there, atomically (also on NFS, where O_EXCL long was not),
// and the name appears with the whole, durable content, so no reader ever
// sees a part of it, as it could between an O_EXCL create and its write.
// The temporary name is removed either way.
func (d *Filesystem) CreateExclusive(ctx context.Context, p string, content []byte) error {
	full, err := d.fullPathNotRoot("create", p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = inParent(full, func() error { return createLinked(full, content) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return Exists(p)
	default:
		d.pruneEmpty(p) // folders made for a create that did not happen
		return fmt.Errorf("filesystem: create %s: %w", p, err)
	}
}

func createLinked(full string, content []byte) (err error) {
	dir := filepath.Dir(full)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Whether the link was made or not, the temporary name goes: the
	// content lives on under full when it was.
	defer os.Remove(tmp)
	if err = writeSynced(f, content); err != nil {
		return err
	}
	if err = os.Link(tmp, full); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeSynced fills a fresh temporary file, with the mode other registry
// users can read, and closes it.
func writeSynced(f *os.File, content []byte) error {
	err := f.Chmod(fileMode)
	if err == nil {
		_, err = f.Write(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
