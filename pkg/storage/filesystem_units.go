package storage

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
)

// Unit is one thing DeleteUnits removes: the file or folder at Path,
// with everything below it, as Delete removes it. Files names the files
// the caller expects at or below Path (a link or data file), which are
// removed by name before the folder.
type Unit struct {
	Path  string
	Files []string
}

// DeleteUnits removes each unit as Delete would, then the folders the
// units leave empty above them. Units already gone are not errors. It
// exists for garbage collection, which removes tens of thousands of
// leaf folders that each hold one file: Delete's RemoveAll opens, reads
// and closes each folder, and its upward prune tries the same parent
// once per unit, about a dozen system calls a unit. Here a unit costs
// an lstat, an unlink and an rmdir, and each parent is tried once for
// all units. A folder that holds more than its expected files is
// removed whole, as Delete does; a symlink is removed, never followed.
// On an error, the units before the one named are deleted.
func (d *Filesystem) DeleteUnits(ctx context.Context, units []Unit) error {
	parents := map[string]bool{}
	defer d.pruneParents(parents)
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			return err
		}
		full, err := d.fullPathNotRoot("delete", u.Path)
		if err != nil {
			return err
		}
		if err := d.deleteUnit(u, full); err != nil {
			return fail("delete", u.Path, err)
		}
		parents[path.Dir(u.Path)] = true
	}
	return nil
}

func (d *Filesystem) deleteUnit(u Unit, full string) error {
	if len(u.Files) == 1 && u.Files[0] == u.Path {
		// A file, as expected: no lstat needed, unlink never follows
		// a symlink.
		if err := syscall.Unlink(full); err == nil || err == syscall.ENOENT {
			return nil
		}
		// A folder where the file belongs, or an error to report.
		return os.RemoveAll(full)
	}
	st, err := os.Lstat(full)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	if !st.IsDir() { // a file or a symlink: removed itself
		if err := os.Remove(full); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	}
	for _, f := range u.Files {
		rel, ok := strings.CutPrefix(f, u.Path+"/")
		if !ok {
			return fmt.Errorf("%s is not below %s", f, u.Path)
		}
		if err := syscall.Unlink(full + "/" + rel); err != nil && err != syscall.ENOENT {
			break // RemoveAll below deals with it or reports it
		}
	}
	if syscall.Rmdir(full) == nil {
		return nil
	}
	// More than the expected files, or an error to report.
	return os.RemoveAll(full)
}

// pruneParents is pruneEmpty for many folders at once: each is tried
// once, the deepest first (a folder empties only once the folders below
// it are gone), and a folder removed puts its parent on the list.
func (d *Filesystem) pruneParents(dirs map[string]bool) {
	var byDepth [][]string
	for dir := range dirs {
		if dir == "/" {
			continue
		}
		n := strings.Count(dir, "/")
		for len(byDepth) <= n {
			byDepth = append(byDepth, nil)
		}
		byDepth[n] = append(byDepth[n], dir)
	}
	root := strings.TrimSuffix(d.root, "/")
	for n := len(byDepth) - 1; n >= 1; n-- {
		seen := map[string]bool{}
		for _, dir := range byDepth[n] {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if syscall.Rmdir(root+dir) == nil && n > 1 {
				byDepth[n-1] = append(byDepth[n-1], path.Dir(dir))
			}
		}
	}
}
