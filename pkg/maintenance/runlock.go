package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"regctl/internal/fsutil"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

// ErrRunInProgress is wrapped when another cleanup or garbage collection
// holds the run lock of the same storage.
var ErrRunInProgress = errors.New("another registry-cleanup or registry-garbage-collect is running on this storage")

// RunLockObject is the run lock of a storage other than the filesystem
// (S3): an object in the storage itself, so that it guards every host
// working on the bucket. It is a lease (see Acquire): created
// exclusively, renewed every third of its ttl while held, taken over
// once expired (its holder crashed), deleted on release.
const RunLockObject = Prefix + "/runs/lock.json"

// DefaultRunLockTTL is how long the run lock of a run that died without
// releasing it (kill -9, a lost host) keeps other runs out.
const DefaultRunLockTTL = DefaultLeaseTTL

// RunLockPath is where the run lock of st lives, for messages: for a
// filesystem storage a lock file beside its Distribution tree (never
// copied, never read by a registry), for any other storage the object
// RunLockObject in the storage.
func RunLockPath(st distconfig.Storage) string {
	if p, ok := runLockFile(st); ok {
		return p
	}
	return st.Driver + ":" + RunLockObject
}

// runLockFile is the flock file of a storage in a local folder (the
// filesystem's).
func runLockFile(st distconfig.Storage) (string, bool) {
	root, ok := storage.LocalRoot(st.Driver, st.Params)
	if !ok {
		return "", false
	}
	return filepath.Join(root, ".regctl-run.lock"), true
}

// RunLock is a held run lock. Release it on every way out.
type RunLock struct {
	unlock func() // the flock file's
	lease  *Lease // the storage object's
}

// Lost is closed when a storage lock is no longer ours (it could not be
// renewed before it expired, and may have been taken over): the run must
// stop. Never closed for a filesystem lock, which dies only with the
// process.
func (r *RunLock) Lost() <-chan struct{} {
	if r.lease == nil {
		return nil
	}
	return r.lease.Lost()
}

// Err says why the lock was lost; nil while it is held.
func (r *RunLock) Err() error {
	if r.lease == nil {
		return nil
	}
	return r.lease.Err()
}

// Release gives the lock up. It uses a context of its own, so that it
// works after the run's context was cancelled (Ctrl-C).
func (r *RunLock) Release() error {
	if r.unlock != nil {
		r.unlock()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.lease.Release(ctx)
}

// LockRuns takes the run lock of st for holder without waiting. When
// another run holds it, the error wraps ErrRunInProgress and says who.
//
// A filesystem storage is locked with flock on a file beside its tree:
// the kernel frees it the moment its process dies, so a run killed -9
// blocks nobody. drv may be nil then. Every other storage (S3, shared
// by several hosts) is locked with the object RunLockObject in drv, held
// for ttl (DefaultRunLockTTL when 0) past the last renewal: a run killed
// -9 keeps others out until then.
func LockRuns(ctx context.Context, st distconfig.Storage, drv storage.Driver, holder string, ttl time.Duration) (*RunLock, error) {
	if p, ok := runLockFile(st); ok {
		unlock, err := lockFile(p, holder, clockOf(ctx).Now())
		if err != nil {
			return nil, err
		}
		return &RunLock{unlock: unlock}, nil
	}
	if drv == nil {
		return nil, fmt.Errorf("run lock: no driver for the %s storage", st.Driver)
	}
	if ttl <= 0 {
		ttl = DefaultRunLockTTL
	}
	l, err := acquireAt(ctx, drv, RunLockObject, "run lock", holder, "run", ttl)
	var held *HeldError
	if errors.As(err, &held) {
		h := held.Lease
		return nil, fmt.Errorf("%w (%s: %s, host %s, pid %d, since %s; expires %s unless renewed)", ErrRunInProgress,
			RunLockPath(st), h.Holder, h.Host, h.PID, h.Started.Local().Format(time.RFC3339), h.Expires.Local().Format(time.RFC3339))
	}
	if err != nil {
		return nil, err
	}
	return &RunLock{lease: l}, nil
}

// lockFile flocks p for holder, whose name it writes into the file for
// the next one's error.
func lockFile(p, holder string, now time.Time) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	f, err := fsutil.LockFile(p)
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("%w (%s: %s)", ErrRunInProgress, p, strings.TrimSpace(readHolder(p)))
	}
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	// Who holds it, for the next one's error; through the locked file,
	// which is no symbolic link.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(fmt.Appendf(nil, "%s, pid %d, since %s\n", holder, os.Getpid(), now.UTC().Format(time.RFC3339)), 0)
	}
	return func() { f.Close() }, nil
}

// readHolder reads what the holder of the run lock file p wrote, never
// through a symbolic link.
func readHolder(p string) string {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "unknown holder"
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b)
}

// Bind returns a context that is cancelled, with the reason as its
// cause, when the lock is lost: work under it stops rather than overlap
// with a run that took the lock over.
func (r *RunLock) Bind(ctx context.Context) (context.Context, context.CancelFunc) {
	return stopOnLoss(ctx, r.Lost(), r.Err)
}
