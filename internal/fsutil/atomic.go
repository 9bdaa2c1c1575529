// Package fsutil holds the file-writing rules every regctl command shares.
package fsutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that a reader, or a crash at
// any moment, sees either the old file or the new one, never a mix: the
// data goes to a temporary file in the same folder, is synced, gets its
// mode and is renamed over path; the folder is synced last so the rename
// itself survives a power loss.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return WriteFileAtomicGroup(path, data, mode, -1)
}

// WriteFileAtomicGroup is WriteFileAtomic that also gives the file to
// group gid (-1: the group new files get). The group is set before the
// mode and before any byte lands, so the file is never readable by a
// group it is not meant for. Changing the group needs root, or a process
// that belongs to that group: the error then wraps fs.ErrPermission.
func WriteFileAtomicGroup(path string, data []byte, mode fs.FileMode, gid int) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if gid >= 0 {
		if err = tmp.Chown(-1, gid); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	// Set the mode before any byte lands, so a secret is never readable
	// by others, not even for a moment.
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes a folder's entries (a rename, a new file) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
