package settings

import (
	"errors"
	"fmt"
	"path/filepath"

	"regctl/internal/fsutil"
)

// Lock keeps two regctl runs from writing the same files at once.
// The lock file sits beside the settings file, which both runs share.
func Lock(l *Loaded) (func(), error) {
	unlock, err := fsutil.Lock(filepath.Join(l.Dir(), ".regctl.lock"))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("another regctl command is changing these files (%w); try again when it is done", err)
	}
	return unlock, err
}
