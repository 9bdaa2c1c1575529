package storage

import (
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
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
// an open of its folder, an unlink per file and an rmdir, the folder
// above is opened once for the units it holds, and each parent is tried
// once for all units. A folder that holds more than its expected files
// is removed whole, as Delete does; a symbolic link is removed, never
// followed, and a unit below one fails with ErrSymlink. On an error,
// the units before the one named are deleted.
func (d *Filesystem) DeleteUnits(ctx context.Context, units []Unit) error {
	parents := map[string]bool{}
	defer d.pruneParents(parents)
	// Units come sorted, so most share their folder with the one before:
	// it is opened once for them all.
	dirRel, dirfd := "", -1
	defer func() {
		if dirfd >= 0 {
			unix.Close(dirfd)
		}
	}()
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := relPathNotRoot("delete", u.Path)
		if err != nil {
			return err
		}
		dir, name := splitRel(rel)
		if dir != dirRel || dirfd < 0 {
			if dirfd >= 0 {
				unix.Close(dirfd)
			}
			dirRel = dir
			if dirfd, err = d.openDir(dir); err != nil {
				if isNotExist(err) {
					continue // gone, with the unit
				}
				return fail("delete", u.Path, err)
			}
		}
		if err := deleteUnit(dirfd, name, u); err != nil && !isNotExist(err) {
			return fail("delete", u.Path, err)
		}
		parents[path.Dir(u.Path)] = true
	}
	return nil
}

// deleteUnit removes u, named name in folder dirfd.
func deleteUnit(dirfd int, name string, u Unit) error {
	if len(u.Files) == 1 && u.Files[0] == u.Path {
		// A file, as expected: unlink never follows a symbolic link.
		if err := unix.Unlinkat(dirfd, name, 0); err == nil || err == unix.ENOENT {
			return nil
		}
		// A folder where the file belongs, or an error to report.
		return removeAllAt(dirfd, name)
	}
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		// A file or a symbolic link: removed itself.
		return removeAllAt(dirfd, name)
	}
	for _, f := range u.Files {
		rel, ok := strings.CutPrefix(f, u.Path+"/")
		if !ok {
			unix.Close(fd)
			return fmt.Errorf("%s is not below %s", f, u.Path)
		}
		if unlinkBeneath(fd, rel) != nil {
			break // removeAllAt below deals with it or reports it
		}
	}
	unix.Close(fd)
	if unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) == nil {
		return nil
	}
	// More than the expected files, or an error to report.
	return removeAllAt(dirfd, name)
}

// unlinkBeneath unlinks file rel below folder dirfd; a missing file is
// no error.
func unlinkBeneath(dirfd int, rel string) error {
	dir, name := splitRel(rel)
	if dir != "." {
		fd, err := openBeneath(dirfd, dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err == unix.ENOENT {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dirfd = fd
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
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
	for n := len(byDepth) - 1; n >= 1; n-- {
		seen := map[string]bool{}
		for _, dir := range byDepth[n] {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if d.remove(dir[1:], unix.AT_REMOVEDIR) == nil && n > 1 {
				byDepth[n-1] = append(byDepth[n-1], path.Dir(dir))
			}
		}
	}
}
