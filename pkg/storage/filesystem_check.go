package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Check is the filesystem's health check: a look at the root folder. A
// root that does not exist yet is fine (the first push creates it); one
// that existed and is gone, is no folder or does not read, is down.
func (d *Filesystem) Check(ctx context.Context) error {
	root := d.dir.path
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !d.seen.Load():
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("storage.filesystem.rootdirectory %s is gone", root)
	case err != nil:
		return fmt.Errorf("storage.filesystem.rootdirectory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("storage.filesystem.rootdirectory %s is not a folder", root)
	}
	f, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("storage.filesystem.rootdirectory: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
		return fmt.Errorf("storage.filesystem.rootdirectory: %w", err)
	}
	d.seen.Store(true)
	return nil
}
