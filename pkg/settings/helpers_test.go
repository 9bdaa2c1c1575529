package settings

import (
	"os"
	"path/filepath"
	"testing"
)

// setup writes src as regctl.toml into a fresh folder and loads it.
func setup(t *testing.T, src string) *Loaded {
	t.Helper()
	path := filepath.Join(t.TempDir(), "regctl.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
