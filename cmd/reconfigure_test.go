package cmd

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
)

var hex128 = regexp.MustCompile(`[0-9a-f]{128}`)

// secretsFile is the part of regctl-secrets.json the tests look at.
type secretsFile struct {
	Registry struct {
		HTTPSecret          string `json:"http_secret"`
		InternalKey         string `json:"internal_key"`
		InternalCertificate string `json:"internal_certificate"`
	} `json:"registry"`
}

func readSecrets(t *testing.T, dir string) secretsFile {
	t.Helper()
	var s secretsFile
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "regctl-secrets.json"))), &s); err != nil {
		t.Fatal(err)
	}
	if s.Registry.HTTPSecret == "" || s.Registry.InternalKey == "" || s.Registry.InternalCertificate == "" {
		t.Fatalf("incomplete secrets in %s: %+v", dir, s)
	}
	return s
}

// renderedFiles are the files reconfigure owns in dir, by role.
func renderedFiles(dir string) map[string]string {
	return map[string]string{
		"secrets":     filepath.Join(dir, "regctl-secrets.json"),
		"config.yml":  filepath.Join(dir, "data", "registry", "config.yml"),
		"gitlab.yml":  filepath.Join(dir, "data", "gitlab-rails", "etc", "gitlab.yml"),
		"certificate": filepath.Join(dir, "data", "registry", "gitlab-registry.crt"),
		"signing key": filepath.Join(dir, "data", "gitlab-rails", "etc", "gitlab-registry.key"),
	}
}

// jsonResult is reconfigure -o json.
type jsonResult struct {
	Settings string `json:"settings"`
	DryRun   bool   `json:"dry_run"`
	Files    []struct {
		Path   string `json:"path"`
		Role   string `json:"role"`
		Change string `json:"change"`
		Diff   string `json:"diff"`
	} `json:"files"`
	Generated []string `json:"generated_secrets"`
}

func parseResult(t *testing.T, r result) jsonResult {
	t.Helper()
	var res jsonResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	return res
}

// changes maps role to change from a JSON result.
func changes(res jsonResult) map[string]string {
	m := map[string]string{}
	for _, f := range res.Files {
		m[f.Role] = f.Change
	}
	return m
}

// A fresh folder: dry run, first run, second run. Two key generations.
func TestReconfigureFreshDir(t *testing.T) {
	t.Parallel()
	dir, settings := newSettings(t, "data_dir = \"data\"\n")
	files := renderedFiles(dir)

	// 1. Dry run on a fresh folder writes nothing at all.
	before := snapshot(t, dir)
	dry := mustCode(t, 0, "reconfigure", "--dry-run", "--settings", settings)
	sameTree(t, before, snapshot(t, dir))
	if got := listing(snapshot(t, dir)); !slices.Equal(got, []string{".", "regctl.toml"}) {
		t.Errorf("dry run left %v", got)
	}
	mustContain(t, "dry run", dry.stdout, "(dry run: nothing written)", "would be created",
		"+++ b"+files["config.yml"], "+++ b"+files["gitlab.yml"], `secret: "<redacted>"`)
	mustNotContain(t, "dry run", dry.stdout+dry.stderr, "PRIVATE KEY")
	if m := hex128.FindString(dry.stdout + dry.stderr); m != "" {
		t.Errorf("dry run shows a 128-hex value (the http secret?): %s", m)
	}
	t.Run("new file hunk", func(t *testing.T) {
		// A unified diff of a new file starts at line 0 of /dev/null:
		// "@@ -0,0 +1,N @@", as diff -u and git print, so patch applies it.
		mustContain(t, "dry run", dry.stdout, "--- /dev/null\n+++ b"+files["gitlab.yml"]+"\n@@ -0,0 +1,")
	})

	// 2. First real run creates every file with the right mode.
	first := mustCode(t, 0, "reconfigure", "--settings", settings)
	for role, p := range files {
		if l := lineWith(first.stdout, fmt.Sprintf("info  %-22s %s created", role, p)); l == "" {
			t.Errorf("first run does not list %s (%s) as created:\n%s", role, p, first.stdout)
		}
	}
	mustContain(t, "first run", first.stdout,
		"generated registry.http_secret, registry.internal_key, registry.internal_certificate",
		filepath.Join(dir, "data", "gitlab-rails", "shared", "registry")+" created")
	wantMode := map[string]fs.FileMode{"secrets": 0o600, "config.yml": 0o600, "signing key": 0o600, "gitlab.yml": 0o600, "certificate": 0o644}
	for role, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", role, err)
			continue
		}
		// 0640 where a group git exists (pkg/reconfigure tests both).
		if role == "gitlab.yml" && st.Mode().Perm() == 0o640 {
			continue
		}
		if st.Mode().Perm() != wantMode[role] {
			t.Errorf("%s: mode %04o, want %04o", p, st.Mode().Perm(), wantMode[role])
		}
	}
	sec := readSecrets(t, dir)
	if !regexp.MustCompile(`^[0-9a-f]{128}$`).MatchString(sec.Registry.HTTPSecret) {
		t.Errorf("http secret %q is not 128 hex characters", sec.Registry.HTTPSecret)
	}
	mustContain(t, "config.yml", readFile(t, files["config.yml"]), sec.Registry.HTTPSecret)
	if readFile(t, files["signing key"]) != sec.Registry.InternalKey {
		t.Error("the key file is not the key in the secrets")
	}
	// What the dry run printed holds neither the secret nor any key body.
	keyBody := strings.Split(sec.Registry.InternalKey, "\n")[1]
	mustNotContain(t, "dry run", dry.stdout, sec.Registry.HTTPSecret, keyBody)

	// 3. A second run changes nothing: same content, mode and mtime.
	ageFiles(t, dir)
	before = snapshot(t, dir)
	second := mustCode(t, 0, "reconfigure", "--settings", settings)
	sameTree(t, before, snapshot(t, dir))
	for role, p := range files {
		if l := lineWith(second.stdout, fmt.Sprintf("ok    %-22s %s unchanged", role, p)); l == "" {
			t.Errorf("second run does not say %s (%s) is unchanged:\n%s", role, p, second.stdout)
		}
	}
	mustNotContain(t, "second run", second.stdout, "created", "updated", "generated")
	mustContain(t, "second run", second.stdout, "Everything is up to date.")

	// 4. And says so in JSON.
	js := parseResult(t, mustCode(t, 0, "reconfigure", "-o", "json", "--settings", settings))
	sameTree(t, before, snapshot(t, dir))
	if js.Settings != settings || js.DryRun || len(js.Generated) != 0 {
		t.Errorf("unexpected JSON result header: %+v", js)
	}
	if len(js.Files) != len(files) {
		t.Errorf("JSON lists %d files, want %d: %+v", len(js.Files), len(files), js.Files)
	}
	for _, f := range js.Files {
		if f.Change != string(reconfigure.Unchanged) || files[f.Role] != f.Path {
			t.Errorf("JSON file %+v: want %s unchanged", f, files[f.Role])
		}
	}
}

// A change to a prepared folder: the dry run shows the diff with the http
// secret redacted and writes nothing; the real run updates only what the
// change touches.
func TestReconfigureChange(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"127.0.0.1:5000\"\n")
	files := renderedFiles(dir)
	sec := readSecrets(t, dir)
	writeFile(t, settings, "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"127.0.0.1:5005\"\n", 0o644)

	ageFiles(t, dir)
	before := snapshot(t, dir)
	dry := mustCode(t, 0, "reconfigure", "-n", "--settings", settings)
	sameTree(t, before, snapshot(t, dir))
	mustContain(t, "dry run", dry.stdout,
		files["config.yml"]+" would be updated",
		"--- a"+files["config.yml"], "+++ b"+files["config.yml"],
		"-  addr: \"127.0.0.1:5000\"\n+  addr: \"127.0.0.1:5005\"\n",
		`   secret: "<redacted>"`,
		`+    api_url: "http://127.0.0.1:5005"`)
	mustNotContain(t, "dry run", dry.stdout, sec.Registry.HTTPSecret, "PRIVATE KEY")

	dryJSON := parseResult(t, mustCode(t, 0, "reconfigure", "-n", "-o", "json", "--settings", settings))
	sameTree(t, before, snapshot(t, dir))
	if !dryJSON.DryRun {
		t.Error("JSON dry run says dry_run false")
	}
	for _, f := range dryJSON.Files {
		mustNotContain(t, "JSON diff of "+f.Role, f.Diff, sec.Registry.HTTPSecret)
	}

	res := parseResult(t, mustCode(t, 0, "reconfigure", "-o", "json", "--settings", settings))
	want := map[string]string{"secrets": "unchanged", "config.yml": "updated", "gitlab.yml": "updated", "certificate": "unchanged", "signing key": "unchanged"}
	if got := changes(res); !mapsEqual(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	mustContain(t, "config.yml", readFile(t, files["config.yml"]), `addr: "127.0.0.1:5005"`, sec.Registry.HTTPSecret)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

type wantProblem struct {
	line int
	key  string
	msg  string
}

// Invalid settings: every problem of one stage in one run, each located
// by file:line and key; exit 2; nothing written.
func TestReconfigureInvalidSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		want     []wantProblem
		notWant  []string
	}{
		{
			// Shape: unknown keys and wrong types. Value problems in the
			// same file wait until the shape is right.
			name: "shape",
			settings: `# shape problems
data_dir = "data"
external_url = "ftp://x"   # a value problem, reported only once the shape is right

[registry]
registry_htp_addr = "127.0.0.1:5000"
registry_http_addr = 5000

[registry.storage.maintenance.readonly]
enabled = "yes"
`,
			want: []wantProblem{
				{6, "registry.registry_htp_addr", `unknown key (did you mean "registry_http_addr"?)`},
				{7, "registry.registry_http_addr", "must be a string, not the integer 5000"},
				{10, "registry.storage.maintenance.readonly.enabled", `must be a boolean, not the string "yes"`},
			},
			notWant: []string{"external_url", "ftp://"},
		},
		{
			name: "values",
			settings: `data_dir = "data"
external_url = "ftp://x"

[registry]
debug_addr = "localhost:70000"

[registry.storage.filesystem]
rootdirectory = "/srv/registry"

[registry.storage.s3]
encrypt = true

[[registry.notifications]]
name = "geo"
url = "https://geo.example.com/notify"

[[registry.notifications]]
name = "audit"
`,
			want: []wantProblem{
				{2, "external_url", `"ftp://x" must start with http:// or https://`},
				{5, "registry.debug_addr", `port "70000" is out of range`},
				{7, "registry.storage", "sets 2 storage drivers (filesystem and s3)"},
				{10, "registry.storage.s3.bucket", "is required for the s3 driver"},
				{10, "registry.storage.s3.region", "is required for the s3 driver"},
				{17, "registry.notifications[1].url", "is required"},
			},
			notWant: []string{"notifications[0]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, settingsPath := newSettings(t, tt.settings)
			before := snapshot(t, dir)

			r := mustCode(t, 2, "reconfigure", "--settings", settingsPath)
			sameTree(t, before, snapshot(t, dir))
			mustContain(t, "stderr", r.stderr, fmt.Sprintf("invalid settings: %d problems:", len(tt.want)))
			for _, p := range tt.want {
				mustContain(t, "stderr", r.stderr, fmt.Sprintf("%s:%d: %s: %s", settingsPath, p.line, p.key, p.msg))
			}
			mustNotContain(t, "stderr", r.stderr, tt.notWant...)
			if r.stdout != "" {
				t.Errorf("text mode printed on stdout:\n%s", r.stdout)
			}

			// -o json: the same problems as data on stdout.
			r = mustCode(t, 2, "reconfigure", "-o", "json", "--settings", settingsPath)
			sameTree(t, before, snapshot(t, dir))
			var out struct {
				Error    string              `json:"error"`
				Problems []*settings.Problem `json:"problems"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, r)
			}
			if len(out.Problems) != len(tt.want) {
				t.Fatalf("JSON has %d problems, want %d: %s", len(out.Problems), len(tt.want), r.stdout)
			}
			for i, p := range tt.want {
				got := out.Problems[i]
				if got.File != settingsPath || got.Line != p.line || got.Key != p.key || !strings.Contains(got.Message, p.msg) {
					t.Errorf("problem %d: got %+v, want %s:%d %s %q", i, got, settingsPath, p.line, p.key, p.msg)
				}
			}
		})
	}
}

func TestReconfigureMalformedTOML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		line     int
	}{
		{"unclosed header", "data_dir = \"data\"\n\n[registry\nlog_level = \"info\"\n", 3},
		{"missing value", "data_dir = \"data\"\n[registry]\nlog_level =\n", 3},
		{"unterminated string", "# comment\ndata_dir = \"data\n", 2},
		{"duplicate key", "data_dir = \"data\"\n[registry]\nlog_level = \"info\"\nlog_level = \"debug\"\n", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, settingsPath := newSettings(t, tt.settings)
			before := snapshot(t, dir)
			r := mustCode(t, 2, "reconfigure", "--settings", settingsPath)
			sameTree(t, before, snapshot(t, dir))
			mustContain(t, "stderr", r.stderr, fmt.Sprintf("%s:%d: ", settingsPath, tt.line), "TOML syntax")
		})
	}
}

// A policy that can delete every tag is valid: reconfigure goes on and
// says so on stderr, with file, line and key.
func TestReconfigureShowsSettingsWarnings(t *testing.T) {
	t.Parallel()
	_, settings := withSecrets(t, "data_dir = \"data\"\n\n[[registry.cleanup_policies]]\nname = \"all\"\nrepositories = [\"g/**\"]\nenabled = true\nname_regex = \".*\"\n")
	r := mustCode(t, 0, "reconfigure", "--settings", settings)
	mustContain(t, "stderr", r.stderr, "warning: "+settings+":7: registry.cleanup_policies[0].name_regex: policy \"all\" can delete every tag")
}

// A cleanup policy without enabled = true is valid (GitLab's default):
// reconfigure goes on and warns, with file, line and key, on stderr and
// in -o json. Other commands keep quiet about it.
func TestReconfigureWarnsAboutDisabledCleanupPolicies(t *testing.T) {
	t.Parallel()
	_, settingsPath := withSecrets(t, "data_dir = \"data\"\n\n[[registry.cleanup_policies]]\nname = \"weekly\"\nrepositories = [\"g/**\"]\nname_regex = \"v.*\"\nkeep_n = 5\n")
	r := mustCode(t, 0, "reconfigure", "--settings", settingsPath)
	mustContain(t, "stderr", r.stderr, "warning: "+settingsPath+":3: registry.cleanup_policies[0].enabled: policy \"weekly\" is disabled "+
		"(enabled is not set, and GitLab's default is false): registry-cleanup skips it")
	r = mustCode(t, 0, "reconfigure", "--settings", settingsPath, "-o", "json")
	var out struct {
		Files    []json.RawMessage
		Warnings []settings.Problem
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(out.Files) == 0 || len(out.Warnings) != 1 || out.Warnings[0].Line != 3 || out.Warnings[0].Key != "registry.cleanup_policies[0].enabled" {
		t.Errorf("JSON: %s", r.stdout)
	}
	r = mustCode(t, 0, "registry-readonly", "status", "--settings", settingsPath)
	mustNotContain(t, "registry-readonly status", r.stdout+r.stderr, "is disabled")
}
