package cmd

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"regctl/internal/testtools"
)

// storageConfig writes a config.yml for a filesystem root in a temp dir.
func storageConfig(t *testing.T, root string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfg, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n  delete:\n    enabled: true\n", 0o600)
	return cfg
}

func TestRegistryUsageFlags(t *testing.T) {
	t.Parallel()
	cfg := storageConfig(t, t.TempDir())
	mustCode(t, 2, "registry-usage", "--by", "group", cfg)
	mustCode(t, 2, "registry-usage", "--top", "-1", cfg)
	mustCode(t, 2, "registry-usage", "a", "b")
	r := mustCode(t, 0, "registry-usage", "-o", "json", "--by", "namespace", cfg)
	var res usageResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if res.By != "namespace" || res.Config != cfg || res.Store.Blobs != 0 {
		t.Errorf("empty store: %+v", res)
	}
	r = mustCode(t, 0, "registry-usage", cfg)
	mustContain(t, "text", r.stdout, "REPOSITORY", "GC -m would free")
}

// Symbolic links planted in the root are reported and never followed:
// the blobs behind them are not counted, nor is the repository.
func TestRegistryUsageNeverFollowsSymlinks(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	s := testtools.PlantSymlinks(t, root)
	cfg := storageConfig(t, root)
	r := mustCode(t, 0, "registry-usage", "-o", "json", cfg)
	var res usageResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var links []string
	for _, p := range res.Problems {
		if p.Kind == "symlink" {
			links = append(links, p.Path)
		}
	}
	if res.Store.Blobs != 1 || len(res.Repositories) != 0 || res.Store.Symlinks != 3 || len(links) != 3 {
		t.Errorf("want the manifest blob alone, no repository and 3 links reported: %s", r.stdout)
	}
	r = mustCode(t, 0, "registry-usage", cfg)
	mustContain(t, "text", r.stdout, "symlinks", "3, never followed", "repositories/evil")
	s.CheckOutside(t)
	s.CheckLinks(t)
}
