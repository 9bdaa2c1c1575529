package maintenance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"regctl/internal/fsutil"
	"regctl/pkg/distconfig"
)

// ErrRunInProgress is wrapped when another cleanup or garbage collection
// holds the run lock of the same storage.
var ErrRunInProgress = errors.New("another registry-cleanup or registry-garbage-collect is running on this storage")

// RunLockPath is the lock file that keeps registry-cleanup and
// registry-garbage-collect runs on one storage from overlapping: beside
// the Distribution tree of a filesystem storage (never copied, never read
// by a registry), and for any other storage a file per bucket and root in
// the temporary folder, which guards this host only (across hosts the
// maintenance lease keeps daemons read-only during GC).
func RunLockPath(st distconfig.Storage) string {
	if st.Driver == "filesystem" {
		if root, _ := st.Params["rootdirectory"].(string); root != "" {
			return filepath.Join(root, ".regctl-run.lock")
		}
	}
	var id []string
	for _, k := range []string{"regionendpoint", "bucket", "rootdirectory"} {
		v, _ := st.Params[k].(string)
		id = append(id, v)
	}
	sum := sha256.Sum256([]byte(st.Driver + "\x00" + strings.Join(id, "\x00")))
	return filepath.Join(os.TempDir(), "regctl-run-"+hex.EncodeToString(sum[:8])+".lock")
}

// LockRuns takes the run lock of st for holder without waiting. The lock
// dies with the process. When another run holds it, the error wraps
// ErrRunInProgress and says who.
func LockRuns(st distconfig.Storage, holder string) (unlock func(), err error) {
	p := RunLockPath(st)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	unlock, err = fsutil.Lock(p)
	if errors.Is(err, fsutil.ErrLocked) {
		who, _ := os.ReadFile(p)
		return nil, fmt.Errorf("%w (%s: %s)", ErrRunInProgress, p, strings.TrimSpace(string(who)))
	}
	if err != nil {
		return nil, err
	}
	// Who holds it, for the next one's error. The lock is on the open
	// file, so rewriting its content through another handle is safe.
	_ = os.WriteFile(p, fmt.Appendf(nil, "%s, pid %d, since %s\n", holder, os.Getpid(), time.Now().UTC().Format(time.RFC3339)), 0o600)
	return unlock, nil
}
