package cmd

import (
	"testing"
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
