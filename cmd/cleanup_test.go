package cmd

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/pkg/cleanup"
	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
	"regctl/pkg/registryd"
	"regctl/pkg/storage"
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

// A disabled policy is named in the summary with the repositories it
// claims and where to enable it (file, line, key), and in -o json; the
// count line tells no policy from a disabled one.
func TestRegistryCleanupNamesDisabledPolicies(t *testing.T) {
	t.Parallel()
	drv, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(registryd.New(registryd.Options{Driver: drv, DeleteEnabled: true}))
	t.Cleanup(hs.Close)
	for _, repo := range []string{"legacy/a", "legacy/b", "team/app", "other/x"} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(strings.TrimPrefix(hs.URL, "http://")+"/"+repo+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	_, settings := newSettings(t, `data_dir = "data"

[[registry.cleanup_policies]]
name = "legacy"
repositories = ["legacy/**"]
name_regex = "v.*"

[[registry.cleanup_policies]]
name = "team"
repositories = ["team/**", "legacy/**"]
enabled = true
name_regex = "v.*"
older_than = "1d"

[[registry.cleanup_policies]]
name = "off"
repositories = ["nothing/**"]
enabled = false
`)
	r := mustCode(t, 0, "--settings", settings, "registry-cleanup", "--registry", hs.URL, "--dry-run")
	mustContain(t, "stdout", r.stdout,
		"warn  policy legacy          disabled: leaves alone 2 repositories: legacy/a legacy/b\n"+
			"      to run it, set enabled = true in this policy: "+settings+":3, registry.cleanup_policies[0].enabled; or run it once with --policy legacy\n",
		"info  policy off             disabled; it claims no repository in this run\n"+
			"      to run it, set enabled = true in this policy: "+settings+":18, registry.cleanup_policies[2].enabled; or run it once with --policy off\n",
		"repositories:        1 cleaned, 0 with errors, 1 without any policy, 2 claimed by a disabled policy\n",
		"tags:                1 seen, 0 to delete, 0 failed\n")
	mustNotContain(t, "stdout", r.stdout, "left out by")
	// Those warnings are reconfigure's; registry-cleanup says it in its report.
	mustNotContain(t, "stderr", r.stderr, "is disabled")

	r = mustCode(t, 0, "--settings", settings, "registry-cleanup", "--registry", hs.URL, "--dry-run", "--repository", "legacy/a")
	mustContain(t, "stdout", r.stdout, "0 cleaned, 0 with errors, 0 without any policy, 1 claimed by a disabled policy, 3 left out by --policy or --repository\n")

	r = mustCode(t, 0, "--settings", settings, "-o", "json", "registry-cleanup", "--registry", hs.URL, "--dry-run")
	var rep struct {
		Skipped  int
		NoPolicy int `json:"no_policy"`
		Excluded int
		Disabled []cleanup.DisabledPolicy
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := []cleanup.DisabledPolicy{{Name: "legacy", Index: 0, Repositories: []string{"legacy/a", "legacy/b"}}, {Name: "off", Index: 2, Repositories: []string{}}}
	if rep.Skipped != 3 || rep.NoPolicy != 1 || rep.Excluded != 0 || !reflect.DeepEqual(rep.Disabled, want) {
		t.Errorf("JSON report %+v, want 3 skipped, 1 without a policy, disabled %+v", rep, want)
	}
}
