package settings

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"regctl/internal/fsutil"
	"regctl/internal/tomlsrc"
)

// The storage tables migrate-storage's cutover swaps.
var (
	FilesystemStorageKey = []string{"registry", "storage", "filesystem"}
	S3StorageKey         = []string{"registry", "storage", "s3"}
)

// SwitchStorageToS3 replaces [registry.storage.filesystem] in the
// settings file with [registry.storage.s3] holding s3 (string, bool and
// integer values, as [migration.s3] decodes), or adds that table when
// the filesystem storage was the default. The old table's lines stay as
// comments under note. As with SetReadOnly, every other line is kept,
// the edited text is validated before it replaces the file, and a file
// changed since it was read is not overwritten.
func SwitchStorageToS3(l *Loaded, s3 map[string]any, note string) (*Loaded, error) {
	if d := StorageDriver(l.Settings.Registry.Storage); d != "filesystem" {
		return nil, fmt.Errorf("edit %s: the storage is %s, not filesystem", l.Path, d)
	}
	kvs, err := tomlsrc.SortedKeyValues(s3)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", l.Path, err)
	}
	src, err := tomlsrc.ReplaceTable(l.Source, FilesystemStorageKey, S3StorageKey, kvs, note)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w; switch [registry.storage] to s3 by hand", l.Path, err)
	}
	updated, err := Parse(l.Path, src)
	if err != nil {
		return nil, err
	}
	if d := StorageDriver(updated.Settings.Registry.Storage); d != "s3" {
		return nil, fmt.Errorf("edit %s: the edited file names the %s storage, not s3; edit it by hand", l.Path, d)
	}
	if err := writeSettingsSource(l, src); err != nil {
		return nil, err
	}
	return updated, nil
}

// RestoreSettings writes original back over the settings file that
// current was read from (a rollback), when the file still holds what
// current holds. original is validated first.
func RestoreSettings(current *Loaded, original []byte) (*Loaded, error) {
	restored, err := Parse(current.Path, original)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(current.Source, original) {
		return restored, nil
	}
	if err := writeSettingsSource(current, original); err != nil {
		return nil, err
	}
	return restored, nil
}

// writeSettingsSource replaces the settings file l was read from with
// src: through a symlink to its target, keeping its mode, atomically,
// under the settings lock, and only if nobody changed it since l was
// read.
func writeSettingsSource(l *Loaded, src []byte) error {
	unlock, err := Lock(l)
	if err != nil {
		return err
	}
	defer unlock()
	target, err := filepath.EvalSymlinks(l.Path)
	if err != nil {
		return err
	}
	st, err := os.Stat(target)
	if err != nil {
		return err
	}
	current, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	if !bytes.Equal(current, l.Source) {
		return fmt.Errorf("%s changed while regctl was editing it; run the command again", l.Path)
	}
	return fsutil.WriteFileAtomic(target, src, st.Mode().Perm())
}
