package registryd

import (
	"context"
	"errors"
	"math/rand/v2"
	"path"
	"strings"
	"time"

	"regctl/pkg/storage"
)

// maxPurgeDelay caps the random wait before the first purge. Distribution
// waits up to an hour; a few minutes is enough to spread nodes restarted
// together and keep the tree walk away from startup, while a daemon that
// is restarted more often than hourly still gets to purge.
const maxPurgeDelay = 5 * time.Minute

// PurgeUploads removes the uploads of every repository that started more
// than olderThan ago. An upload whose startedat is missing or unreadable
// is judged by its folder's modification time. With dryRun it only logs
// and counts. It carries on past errors and returns them joined.
func (s *Server) PurgeUploads(ctx context.Context, olderThan time.Duration, dryRun bool) (purged int, err error) {
	cutoff := time.Now().Add(-olderThan)

	// Collect first, delete after: removing folders during a walk would
	// pull entries from under the walker.
	var uploadsDirs []string
	err = s.driver.Walk(ctx, storage.RepositoriesRoot(), func(fi storage.FileInfo) error {
		if fi.Symlink {
			s.symlinkNotFollowed(fi.Path)
			return nil
		}
		if !fi.IsDir {
			return nil
		}
		base := path.Base(fi.Path)
		switch {
		case base == "_uploads":
			uploadsDirs = append(uploadsDirs, fi.Path)
			return storage.ErrSkipDir
		case strings.HasPrefix(base, "_"):
			// _layers, _manifests, _regctl: repository names never
			// have a component starting with "_", so no repository
			// hides below.
			return storage.ErrSkipDir
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil // nothing was ever pushed
	}
	if err != nil {
		return 0, err
	}

	var errs []error
	for _, dir := range uploadsDirs {
		repo := strings.TrimPrefix(path.Dir(dir), storage.RepositoriesRoot()+"/")
		uploads, err := s.driver.List(ctx, dir)
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		for _, up := range uploads {
			if ctx.Err() != nil {
				return purged, errors.Join(append(errs, ctx.Err())...)
			}
			id := path.Base(up)
			started, how, err := s.uploadStartedAt(ctx, repo, id, up)
			if errors.Is(err, storage.ErrSymlink) {
				s.symlinkNotFollowed(up)
				continue
			}
			if err != nil {
				if !errors.Is(err, storage.ErrNotFound) {
					errs = append(errs, err)
				}
				continue
			}
			if !started.Before(cutoff) {
				continue
			}
			s.log.Info("purging stale upload", "repository", repo, "upload", id,
				"started", started.Format(time.RFC3339), "from", how, "dryrun", dryRun)
			if !dryRun {
				// Under the upload's lock, so a request of this node is
				// not cut off halfway.
				unlock := s.locks.lock("upload:" + id)
				err = s.driver.Delete(ctx, up)
				unlock()
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					errs = append(errs, err)
					continue
				}
			}
			purged++
		}
	}
	return purged, errors.Join(errs...)
}

// symlinkNotFollowed reports a symbolic link in the storage (which the
// filesystem driver never follows): what is behind it, maybe outside the
// root, is neither judged nor purged.
func (s *Server) symlinkNotFollowed(p string) {
	s.log.Warn("upload purge: a symbolic link in the storage, never followed; left alone", "path", p)
}

// uploadStartedAt tells when an upload started: its startedat file, or
// else the modification time of its folder. how says which.
func (s *Server) uploadStartedAt(ctx context.Context, repo, id, dir string) (time.Time, string, error) {
	b, err := s.driver.GetContent(ctx, path.Join(dir, "startedat"))
	if err == nil {
		if t, perr := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); perr == nil {
			return t, "startedat", nil
		}
		s.log.Warn("upload has a corrupt startedat; using its folder's time", "repository", repo, "upload", id)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return time.Time{}, "", err
	}
	fi, err := s.driver.Stat(ctx, dir)
	if err != nil {
		return time.Time{}, "", err
	}
	return fi.ModTime, "modtime", nil
}

// RunUploadPurger purges uploads older than age every interval until ctx
// ends. The first run comes after a random delay of up to
// min(interval, maxPurgeDelay), so that nodes started together do not
// all walk the storage at once.
func (s *Server) RunUploadPurger(ctx context.Context, age, interval time.Duration, dryRun bool) {
	if interval <= 0 {
		s.log.Warn("upload purging disabled: interval must be positive", "interval", interval)
		return
	}
	t := time.NewTimer(rand.N(min(interval, maxPurgeDelay)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.RefusesWrites() {
			// Purging deletes: read-only maintenance (GC, migration)
			// must see the storage hold still.
			s.log.Info("upload purge skipped: read-only mode")
			t.Reset(interval)
			continue
		}
		start := time.Now()
		n, err := s.PurgeUploads(ctx, age, dryRun)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Error("upload purge failed", "purged", n, "err", err)
		} else {
			s.log.Info("upload purge done", "purged", n, "olderthan", age, "dryrun", dryRun, "took", time.Since(start).Round(time.Millisecond))
		}
		t.Reset(interval)
	}
}
