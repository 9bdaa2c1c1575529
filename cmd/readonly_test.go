package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"regctl/pkg/reconfigure"
)

// renderedReadOnly parses config.yml as the registry would.
func renderedReadOnly(t *testing.T, dir string) bool {
	t.Helper()
	var cfg struct {
		Storage struct {
			Maintenance struct {
				Readonly struct {
					Enabled *bool `yaml:"enabled"`
				} `yaml:"readonly"`
			} `yaml:"maintenance"`
		} `yaml:"storage"`
	}
	src := readFile(t, renderedFiles(dir)["config.yml"])
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatalf("config.yml: %v", err)
	}
	on := cfg.Storage.Maintenance.Readonly.Enabled
	if on == nil {
		return false
	}
	return *on
}

// keptInOrder checks that every line of old is in cur, in order, and
// returns the lines of cur that are not from old.
func keptInOrder(t *testing.T, old, cur string) (added []string) {
	t.Helper()
	o, c := strings.Split(old, "\n"), strings.Split(cur, "\n")
	i := 0
	for _, l := range c {
		if i < len(o) && l == o[i] {
			i++
			continue
		}
		added = append(added, l)
	}
	if i != len(o) {
		t.Errorf("line %d of the original (%q) is missing or out of order in:\n%s", i+1, o[i], cur)
	}
	return added
}

// oneLineChanged checks that old and cur differ in exactly one line, line.
func oneLineChanged(t *testing.T, old, cur string, line int) {
	t.Helper()
	o, c := strings.Split(old, "\n"), strings.Split(cur, "\n")
	if len(o) != len(c) {
		t.Errorf("line count changed from %d to %d:\n%s", len(o), len(c), cur)
		return
	}
	for i := range o {
		if (o[i] != c[i]) != (i+1 == line) {
			t.Errorf("line %d: %q -> %q (only line %d should change)", i+1, o[i], c[i], line)
		}
	}
}

func TestRegistryReadonly(t *testing.T) {
	t.Parallel()
	const added = "[registry.storage.maintenance.readonly]"
	tests := []struct {
		name   string
		before string
		after  string // after enable
		edit   string // "replace" one line, "insert" lines, "append" at the end
		line   int    // where the key is after enable
	}{
		{
			name: "no readonly table: appended",
			before: `# regctl settings for the test registry
data_dir = "data"   # relative to this file

[registry]
# where the registry listens
registry_http_addr = "127.0.0.1:5000"

log_level = "info"

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"  # must match the registry
`,
			after: `# regctl settings for the test registry
data_dir = "data"   # relative to this file

[registry]
# where the registry listens
registry_http_addr = "127.0.0.1:5000"

log_level = "info"

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"  # must match the registry

[registry.storage.maintenance.readonly]
enabled = true
`,
			edit: "append", line: 14,
		},
		{
			name: "existing key: one line changes",
			before: `data_dir = "data"

[registry.storage.maintenance.readonly]
# on during upgrades
enabled = false   # flip with regctl registry-readonly

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"
`,
			after: `data_dir = "data"

[registry.storage.maintenance.readonly]
# on during upgrades
enabled = true   # flip with regctl registry-readonly

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"
`,
			edit: "replace", line: 5,
		},
		{
			name: "table without the key: one line inserted",
			before: `data_dir = "data"

[registry.storage.maintenance.readonly]
# on during upgrades

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"
`,
			after: `data_dir = "data"

[registry.storage.maintenance.readonly]
enabled = true
# on during upgrades

[gitlab_rails]
registry_issuer = "omnibus-gitlab-issuer"
`,
			edit: "insert", line: 4,
		},
		{
			name: "inline table",
			before: `data_dir = "data"
[registry]
log_level = "info"
storage = { maintenance = { readonly = { enabled = false } } }  # inline
`,
			after: `data_dir = "data"
[registry]
log_level = "info"
storage = { maintenance = { readonly = { enabled = true } } }  # inline
`,
			edit: "replace", line: 4,
		},
		{
			name: "inline readonly under a header",
			before: `data_dir = "data"
[registry.storage.maintenance]
readonly = { enabled = false }
uploadpurging = { enabled = true, age = "168h" }
`,
			after: `data_dir = "data"
[registry.storage.maintenance]
readonly = { enabled = true }
uploadpurging = { enabled = true, age = "168h" }
`,
			edit: "replace", line: 3,
		},
		{
			name:   "dotted key",
			before: "data_dir = \"data\"\n[registry]\nstorage.maintenance.readonly.enabled = false # dotted\n",
			after:  "data_dir = \"data\"\n[registry]\nstorage.maintenance.readonly.enabled = true # dotted\n",
			edit:   "replace", line: 3,
		},
		{
			name:   "CRLF line endings",
			before: "data_dir = \"data\"\r\n[registry]\r\nlog_level = \"info\"\r\n",
			after:  "data_dir = \"data\"\r\n[registry]\r\nlog_level = \"info\"\r\n\r\n" + added + "\r\nenabled = true\r\n",
			edit:   "append", line: 6,
		},
		{
			name:   "no final newline",
			before: "data_dir = \"data\"\n[registry]\nlog_level = \"info\"",
			after:  "data_dir = \"data\"\n[registry]\nlog_level = \"info\"\n\n" + added + "\nenabled = true",
			edit:   "append", line: 6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, settings := prepared(t, tt.before)
			if renderedReadOnly(t, dir) {
				t.Fatal("config.yml is read-only before enable")
			}
			r := mustCode(t, 0, "registry-readonly", "status", "--settings", settings)
			mustContain(t, "status", r.stdout, "disabled (read-write)", "agrees")

			// enable
			r = mustCode(t, 0, "registry-readonly", "enable", "--settings", settings)
			mustContain(t, "enable", r.stdout,
				settings+": set registry.storage.maintenance.readonly.enabled = true",
				renderedFiles(dir)["config.yml"]+" updated",
				"none running on this config")
			got := readFile(t, settings)
			if got != tt.after {
				t.Errorf("settings after enable:\n%q\nwant\n%q", got, tt.after)
			}
			switch tt.edit {
			case "replace":
				oneLineChanged(t, tt.before, got, tt.line)
			case "insert":
				if add := keptInOrder(t, tt.before, got); len(add) != 1 || strings.TrimSpace(add[0]) != "enabled = true" {
					t.Errorf("inserted %q, want one line enabled = true", add)
				}
			case "append":
				if !strings.HasPrefix(got, tt.before) {
					t.Errorf("the original text is not kept as the start of the file:\n%q", got)
				}
				var lines []string
				for _, l := range keptInOrder(t, tt.before, got) {
					if l = strings.TrimSuffix(l, "\r"); l != "" {
						lines = append(lines, l)
					}
				}
				if len(lines) != 2 || lines[0] != added || lines[1] != "enabled = true" {
					t.Errorf("appended %q, want %s and enabled = true", lines, added)
				}
			}
			if !renderedReadOnly(t, dir) {
				t.Error("config.yml: storage.maintenance.readonly.enabled is not true after enable")
			}

			// status names the file and line
			r = mustCode(t, 0, "registry-readonly", "status", "--settings", settings)
			mustContain(t, "status", r.stdout, "enabled (pulls only)",
				fmt.Sprintf("%s:%d (registry.storage.maintenance.readonly.enabled)", settings, tt.line), "agrees")
			r = mustCode(t, 0, "registry-readonly", "status", "-o", "json", "--settings", settings)
			var st reconfigure.ReadOnlyState
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("status -o json: %v\n%s", err, r)
			}
			if !st.Enabled || !st.InSync || st.Rendered == nil || !*st.Rendered || st.Source != fmt.Sprintf("%s:%d", settings, tt.line) {
				t.Errorf("status -o json: %+v", st)
			}

			// enable twice: nothing changes
			ageFiles(t, dir)
			before := snapshot(t, dir)
			r = mustCode(t, 0, "registry-readonly", "enable", "--settings", settings)
			mustContain(t, "enable again", r.stdout, "unchanged (already enabled)")
			sameTree(t, before, snapshot(t, dir))

			// disable flips the same line back
			r = mustCode(t, 0, "registry-readonly", "disable", "--settings", settings)
			mustContain(t, "disable", r.stdout, settings+": set registry.storage.maintenance.readonly.enabled = false")
			wantOff := strings.Replace(tt.after, "enabled = true", "enabled = false", 1)
			if got := readFile(t, settings); got != wantOff {
				t.Errorf("settings after disable:\n%q\nwant\n%q", got, wantOff)
			}
			if renderedReadOnly(t, dir) {
				t.Error("config.yml: storage.maintenance.readonly.enabled is still true after disable")
			}
			r = mustCode(t, 0, "registry-readonly", "status", "--settings", settings)
			mustContain(t, "status", r.stdout, "disabled (read-write)", fmt.Sprintf("%s:%d", settings, tt.line), "agrees")
		})
	}
}

// Status notices a settings change that reconfigure has not rendered yet.
func TestRegistryReadonlyStatusOutOfSync(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n")
	writeFile(t, settings, "data_dir = \"data\"\n[registry.storage.maintenance.readonly]\nenabled = true\n", 0o644)
	before := snapshot(t, dir)
	r := mustCode(t, 0, "registry-readonly", "status", "--settings", settings)
	mustContain(t, "status", r.stdout, "enabled (pulls only)", "still says enabled: false", "run `regctl reconfigure`")
	sameTree(t, before, snapshot(t, dir))
}

// Edits that cannot be made leave the settings file byte-identical and
// write nothing else either.
func TestRegistryReadonlyRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		code     int
		want     string
	}{
		{"invalid settings", "data_dir = \"data\"\n# a typo\n[registry]\nregistry_htp_addr = \"127.0.0.1:5000\"\n",
			2, `regctl.toml:4: registry.registry_htp_addr: unknown key (did you mean "registry_http_addr"?)`},
		{"invalid value", "data_dir = \"data\"\nexternal_url = \"ftp://x\"\n", 2, "regctl.toml:2: external_url"},
		{"malformed TOML", "data_dir = \"data\"\n[registry\n", 2, "regctl.toml:2: "},
		{"storage given by dotted keys", "data_dir = \"data\"\n[registry]\nstorage.maintenance.uploadpurging.enabled = false\n",
			1, "edit that line by hand"},
		{"empty inline readonly table", "data_dir = \"data\"\n[registry.storage.maintenance]\nreadonly = {}\n",
			1, "edit that line by hand"},
	}
	for _, tt := range tests {
		for _, verb := range []string{"enable", "disable"} {
			if tt.code == 1 && verb == "disable" {
				// Off is the default: disabling an unset key edits
				// nothing, so these layouts are not refused (see
				// TestRegistryReadonlyDisableUnsetIsNoop).
				continue
			}
			t.Run(tt.name+"/"+verb, func(t *testing.T) {
				t.Parallel()
				dir, settings := withSecrets(t, tt.settings)
				before := snapshot(t, dir)
				r := mustCode(t, tt.code, "registry-readonly", verb, "--settings", settings)
				mustContain(t, "stderr", r.stderr, tt.want)
				sameTree(t, before, snapshot(t, dir))
			})
		}
	}
}

// Disabling when the key is unset changes no line of the settings file,
// even in a layout where an edit would be refused.
func TestRegistryReadonlyDisableUnsetIsNoop(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"data_dir = \"data\"\n",
		"data_dir = \"data\"\n[registry]\nstorage.maintenance.uploadpurging.enabled = false\n",
	} {
		dir, settings := withSecrets(t, src)
		r := mustCode(t, 0, "registry-readonly", "disable", "--settings", settings)
		mustContain(t, "stdout", r.stdout, "unchanged (already disabled)")
		b, err := os.ReadFile(filepath.Join(dir, "regctl.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != src {
			t.Errorf("settings file changed:\n%s", b)
		}
	}
}
