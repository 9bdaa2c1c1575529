package cmd

import (
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
)

func TestRegistryCleanupBadUsage(t *testing.T) {
	t.Parallel()
	_, none := newSettings(t, "data_dir = \"data\"\n")
	_, pols := newSettings(t, "data_dir = \"data\"\n[[registry.cleanup_policies]]\nname = \"p\"\nrepositories = [\"g/**\"]\nname_regex = \"v.*\"\nkeep_n = 1\n")
	_, bad := newSettings(t, "[[registry.cleanup_policies]]\nname = \"p\"\nrepositories = [\"g/[\"]\nname_regex = \"(\"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no policies", []string{"--settings", none, "registry-cleanup", "--dry-run"}, "has no [[registry.cleanup_policies]]"},
		{"unknown policy", []string{"--settings", pols, "registry-cleanup", "--policy", "nope"}, `--policy "nope": no such policy`},
		{"bad glob", []string{"--settings", pols, "registry-cleanup", "--repository", "a/["}, "not a valid glob"},
		{"username without registry", []string{"--settings", pols, "registry-cleanup", "--username", "u"}, "go with --registry"},
		{"password-stdin without username", []string{"--settings", pols, "registry-cleanup", "--registry", "http://x", "--password-stdin"}, "needs --username"},
		{"config and registry", []string{"--settings", pols, "registry-cleanup", "--registry", "http://x", "config.yml"}, "exclude each other"},
		{"invalid settings", []string{"--settings", bad, "registry-cleanup"}, "not a valid glob"},
		{"bad registry URL", []string{"--settings", pols, "registry-cleanup", "--registry", "ftp://x"}, "want http(s)://HOST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCode(t, 2, tc.args...)
			mustContain(t, "stderr", r.stderr, tc.want)
		})
	}
}

// Two cleanup or GC runs never overlap on one storage; dry runs change
// nothing and need no lock.
func TestCleanupAndGCRunLock(t *testing.T) {
	t.Parallel()
	dir, settings := withSecrets(t, "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"127.0.0.1:1\"\n"+
		"[[registry.cleanup_policies]]\nname = \"p\"\nrepositories = [\"g/**\"]\nenabled = true\nname_regex = \"v.*\"\nkeep_n = 1\n")
	mustCode(t, 0, "reconfigure", "--settings", settings)
	cfg, err := distconfig.Load(filepath.Join(dir, "data", "registry", "config.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := maintenance.LockRuns(t.Context(), cfg.Storage, nil, "a test", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"registry-cleanup"}, {"registry-garbage-collect", "-m"}} {
		r := mustCode(t, 1, append([]string{"--settings", settings}, args...)...)
		mustContain(t, args[0], r.stderr, "another registry-cleanup or registry-garbage-collect is running on this storage", "a test, pid")
	}
	mustCode(t, 0, "--settings", settings, "registry-garbage-collect", "-m", "--dry-run")
	// A dry-run cleanup is not held by the lock (it fails on the
	// missing daemon instead).
	if r := mustCode(t, 1, "--settings", settings, "registry-cleanup", "--dry-run"); strings.Contains(r.stderr, "another registry-cleanup") {
		t.Errorf("dry run held by the lock: %s", r)
	}
	lock.Release()
	lock2, err := maintenance.LockRuns(t.Context(), cfg.Storage, nil, "again", 0)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	lock2.Release()
}
