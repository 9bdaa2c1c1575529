package settings

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"regctl/internal/fsutil"
	"regctl/internal/tomlsrc"
)

// ReadOnlyKey is the settings key registry-readonly edits.
var ReadOnlyKey = []string{"registry", "storage", "maintenance", "readonly", "enabled"}

// SetReadOnly sets ReadOnlyKey in the settings file, editing that one
// line (or adding it) and keeping every other line and comment. The new
// text is validated before it replaces the file, so a failed edit changes
// nothing. It returns the settings as now written and whether the file
// changed.
func SetReadOnly(l *Loaded, on bool) (*Loaded, bool, error) {
	// Off is the default: disabling an unset key changes nothing.
	if l.Settings.ReadOnly() == on && (l.IsSet(ReadOnlyKey...) || !on) {
		return l, false, nil
	}
	src, err := tomlsrc.Set(l.Source, ReadOnlyKey, strconv.FormatBool(on))
	if err != nil {
		return nil, false, fmt.Errorf("edit %s: %w", l.Path, err)
	}
	updated, err := Parse(l.Path, src)
	if err != nil {
		return nil, false, err
	}
	if updated.Settings.ReadOnly() != on {
		return nil, false, fmt.Errorf("edit %s: the edited file does not set read-only to %v; edit %s by hand", l.Path, on, KeyString(ReadOnlyKey))
	}
	unlock, err := Lock(l)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	// Write through a symlink to its target, keep the file's mode, and
	// refuse if someone changed the file since it was read.
	target, err := filepath.EvalSymlinks(l.Path)
	if err != nil {
		return nil, false, err
	}
	st, err := os.Stat(target)
	if err != nil {
		return nil, false, err
	}
	current, err := os.ReadFile(target)
	if err != nil {
		return nil, false, err
	}
	if !bytes.Equal(current, l.Source) {
		return nil, false, fmt.Errorf("%s changed while regctl was editing it; run the command again", l.Path)
	}
	if err := fsutil.WriteFileAtomic(target, src, st.Mode().Perm()); err != nil {
		return nil, false, err
	}
	return updated, true, nil
}

// ReadOnlyKeyName is ReadOnlyKey as the user writes it.
func ReadOnlyKeyName() string { return KeyString(ReadOnlyKey) }
