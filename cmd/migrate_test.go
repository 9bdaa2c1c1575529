package cmd

import (
	"path/filepath"
	"strings"
	"testing"
)

// Bad flag combinations and a missing or wrong target stop before
// anything is touched, with exit 2; a source that is no filesystem
// storage (a swapped config) is refused.
func TestMigrateStorageRefusals(t *testing.T) {
	dir := t.TempDir()
	settings := filepath.Join(dir, "regctl.toml")
	writeFile(t, settings, "data_dir = \"data\"\n", 0o644)
	fsConfig := filepath.Join(dir, "fs.yml")
	writeFile(t, fsConfig, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+filepath.Join(dir, "root")+"\n", 0o644)
	s3Config := filepath.Join(dir, "s3.yml")
	writeFile(t, s3Config, "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n", 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--verify=slow"}, 2, "full or quick"},
		{[]string{"--verify", "--delete"}, 2, "only compares"},
		{[]string{"--cutover", "--dry-run"}, 2, "cannot be a dry run"},
		{[]string{"--concurrency", "0"}, 2, "at least 1"},
		{[]string{fsConfig}, 2, "no target bucket"},
		{[]string{"--cutover", fsConfig}, 2, "switches the registry the settings describe"},
		{[]string{"--bucket", "b", "--region", "r", s3Config}, 1, "the storage is s3"},
	} {
		r := regctl(t, append([]string{"--settings", settings, "migrate-storage"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("migrate-storage %v: want exit %d with %q, got %s", tc.args, tc.code, tc.want, r)
		}
	}
}
