package settings

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type wantProblem struct {
	line int
	key  string
	msg  string // substring
}

func problemsOf(t *testing.T, src string) []*Problem {
	t.Helper()
	_, err := Parse("/etc/regctl/regctl.toml", []byte(src))
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want *InvalidError, got %v", err)
	}
	return inv.Problems()
}

func TestValidationReportsEveryProblemWithLine(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantProblem
	}{
		{
			name: "malformed TOML",
			src:  "external_url = \"https://x\"\n[registry\nlog_level = \"info\"\n",
			want: []wantProblem{{2, "", "TOML syntax"}},
		},
		{
			name: "duplicate key",
			src:  "[registry]\nlog_level = \"info\"\nlog_level = \"debug\"\n",
			want: []wantProblem{{3, "registry.log_level", "has already been defined"}},
		},
		{
			name: "shape: unknown keys and wrong types, all at once",
			src: `external_url = "https://gitlab.example.com"
[registry]
registry_htp_addr = "127.0.0.1:5000"
debug_addr = 5001
relative_urls = "yes"

[registry.storage.filesystem]
rootdir = "/srv"

[registry.storage.maintenance.readonly]
enabled = "yes"

[[registry.notifications]]
name = "a"
url = "https://x"
timeout = 500
threshold = "5"
headers = { Authorization = "Bearer x" }

[gitlab_rails]
registry_port = true
Registry_Issuer = "x"
`,
			want: []wantProblem{
				{3, "registry.registry_htp_addr", `unknown key (did you mean "registry_http_addr"?)`},
				{4, "registry.debug_addr", "must be a string, not the integer 5001"},
				{5, "registry.relative_urls", `must be a boolean, not the string "yes"`},
				{8, "registry.storage.filesystem.rootdir", `did you mean "rootdirectory"?`},
				{11, "registry.storage.maintenance.readonly.enabled", `must be a boolean, not the string "yes"`},
				{16, "registry.notifications[0].timeout", "must be a duration string"},
				{17, "registry.notifications[0].threshold", "must be an integer"},
				{18, "registry.notifications[0].headers.Authorization", "must be an array of strings"},
				{21, "gitlab_rails.registry_port", "must be a port number"},
				{22, "gitlab_rails.Registry_Issuer", `did you mean "registry_issuer"?`},
			},
		},
		{
			name: "values: urls, ports, storage, notifications, all at once",
			src: `external_url = "ftp://gitlab.example.com"
registry_external_url = "https://registry.example.com:70000"
[registry]
registry_http_addr = "localhost"
debug_addr = "localhost:0"
log_level = "verbose"
log_formatter = "xml"

[registry.storage.filesystem]
rootdirectory = "/srv"

[registry.storage.s3]
encrypt = false
keyid = "arn:aws:kms:key"
chunksize = 1024

[[registry.notifications]]
name = "first"

[[registry.notifications]]
name = "first"
url = "not a url"

[gitlab_rails]
registry_host = "https://registry.example.com"
registry_port = "99999"
registry_api_url = "registry:5000"
`,
			want: []wantProblem{
				{1, "external_url", "must start with http:// or https://"},
				{2, "registry_external_url", `port "70000" is out of range`},
				{4, "registry.registry_http_addr", "must be host:port"},
				{5, "registry.debug_addr", `port "0" is out of range`},
				{6, "registry.log_level", `"verbose" is not one of error, warn, info, debug`},
				{7, "registry.log_formatter", `"xml" is not one of text, json, logfmt`},
				{9, "registry.storage", "sets 2 storage drivers (filesystem and s3): choose one"},
				{12, "registry.storage.s3.bucket", "is required for the s3 driver"},
				{12, "registry.storage.s3.region", "is required for the s3 driver"},
				{14, "registry.storage.s3.keyid", "encrypt is not true"},
				{15, "registry.storage.s3.chunksize", "below S3's minimum part size"},
				{17, "registry.notifications[0].url", "is required"},
				{21, "registry.notifications[1].name", `"first" is also the name of endpoint 0`},
				{22, "registry.notifications[1].url", "must start with http:// or https://"},
				{25, "gitlab_rails.registry_host", "must be a host name only"},
				{26, "gitlab_rails.registry_port", `port "99999" is out of range`},
				{27, "gitlab_rails.registry_api_url", "must start with http:// or https://"},
			},
		},
		{
			name: "storage section without a driver",
			src:  "[registry.storage]\nbucket = \"b\"\nregion = \"r\"\n",
			want: []wantProblem{
				{2, "registry.storage.bucket", "names no driver: put it under [registry.storage.s3]"},
				{3, "registry.storage.region", "names no driver: put it under [registry.storage.s3]"},
			},
		},
		{
			name: "migration target needs bucket and region",
			src:  "[migration.s3]\naccesskey = \"a\"\n",
			want: []wantProblem{
				{1, "migration.s3.bucket", "is required"},
				{1, "migration.s3.region", "is required"},
			},
		},
		{
			name: "s3 checksum mode",
			src:  "[registry.storage.s3]\nbucket = \"b\"\nregion = \"r\"\nchecksum = \"always\"\n[migration.s3]\nbucket = \"b\"\nregion = \"r\"\nchecksum = \"when_supported\"\n",
			want: []wantProblem{{4, "registry.storage.s3.checksum", `"always" must be "when_required" (the default) or "when_supported"`}},
		},
		{
			name: "notification queue settings: shape",
			src: `[registry]
notifications_queue_directory = 7
notifications_queue_maxevent = 5
`,
			want: []wantProblem{
				{2, "registry.notifications_queue_directory", "string"},
				{3, "registry.notifications_queue_maxevent", "notifications_queue_maxevents"},
			},
		},
		{
			name: "notification queue settings: values",
			src: `[registry]
notifications_queue_directory = "queues"
notifications_queue_maxevents = -1
`,
			want: []wantProblem{
				{3, "registry.notifications_queue_maxevents", "must not be negative"},
			},
		},
		{
			name: "key pair given half, and cleanup policy regex",
			src: `[registry]
internal_key = "-----BEGIN RSA PRIVATE KEY-----"

[[registry.cleanup_policies]]
name = "p"
repositories = ["group/**"]
name_regex = "(unclosed"
older_than = "ten days"
`,
			want: []wantProblem{
				{2, "registry.internal_key", "is set without internal_certificate"},
				{7, "registry.cleanup_policies[0].name_regex", "not a valid RE2"},
				{8, "registry.cleanup_policies[0].older_than", "is not an age"},
			},
		},
		{
			name: "cleanup policies: names, globs, keep regex, keep_n",
			src: `[[registry.cleanup_policies]]
name = "a"
repositories = ["group/[unclosed", ""]
name_regex_keep = "v(1"
keep_n = -1

[[registry.cleanup_policies]]
name = "a"
repositories = []

[[registry.cleanup_policies]]
repositories = ["x/**"]
older_than = "2 weeks"
`,
			want: []wantProblem{
				{3, "registry.cleanup_policies[0].repositories", `"group/[unclosed" is not a valid glob`},
				{3, "registry.cleanup_policies[0].repositories", `"" is not a valid glob`},
				{4, "registry.cleanup_policies[0].name_regex_keep", "not a valid RE2"},
				{5, "registry.cleanup_policies[0].keep_n", "must not be negative"},
				{8, "registry.cleanup_policies[1].name", `"a" is also the name of policy 0`},
				{9, "registry.cleanup_policies[1].repositories", "is required"},
				{11, "registry.cleanup_policies[2].name", "is required"},
				{13, "registry.cleanup_policies[2].older_than", "is not an age"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, tt.src)
			var gotText []string
			for _, p := range got {
				gotText = append(gotText, p.Error())
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(got), len(tt.want), strings.Join(gotText, "\n  "))
			}
			for _, w := range tt.want {
				found := false
				for _, p := range got {
					if p.Key == w.key && strings.Contains(p.Message, w.msg) {
						found = true
						if p.Line != w.line {
							t.Errorf("%s: line %d, want %d", w.key, p.Line, w.line)
						}
						if p.File != "/etc/regctl/regctl.toml" {
							t.Errorf("%s: file %q", w.key, p.File)
						}
					}
				}
				if !found {
					t.Errorf("missing problem %s: %q; got:\n  %s", w.key, w.msg, strings.Join(gotText, "\n  "))
				}
			}
		})
	}
}

func TestProblemsAreSortedAndFormatted(t *testing.T) {
	_, err := Parse("/s/regctl.toml", []byte("[registry]\nlog_level = \"x\"\nregistry_http_addr = \"nope\"\n"))
	want := "invalid settings: 2 problems:\n" +
		"  /s/regctl.toml:2: registry.log_level: \"x\" is not one of error, warn, info, debug\n" +
		"  /s/regctl.toml:3: registry.registry_http_addr: \"nope\" must be host:port, such as \"127.0.0.1:5000\""
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestEmptyFileIsValidAndAllDefaults(t *testing.T) {
	l, err := Parse("/etc/regctl/regctl.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.Settings) != fmt.Sprint(Defaults()) {
		t.Errorf("empty file gives %+v, want defaults", l.Settings)
	}
}

func TestRelativePathsResolveAgainstSettingsFolder(t *testing.T) {
	src := `data_dir = "data"
[registry]
rootcertbundle = "certs/registry.crt"
notifications_queue_directory = "queues"
[registry.storage.filesystem]
rootdirectory = "../shared/registry"
[gitlab_rails]
registry_key_path = "keys/registry.key"
`
	l, err := Parse("/srv/regctl/regctl.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := l.Resolve()
	for what, got := range map[string][2]string{
		"data dir":     {p.DataDir, "/srv/regctl/data"},
		"config.yml":   {p.ConfigYML, "/srv/regctl/data/registry/config.yml"},
		"certificate":  {p.Certificate, "/srv/regctl/certs/registry.crt"},
		"key":          {p.Key, "/srv/regctl/keys/registry.key"},
		"storage root": {p.StorageRoot, "/srv/shared/registry"},
		"gitlab path":  {p.RegistryPath, "/srv/shared/registry"},
		"secrets":      {p.Secrets, "/srv/regctl/regctl-secrets.json"},
		"notify queue": {p.NotifyQueue, "/srv/regctl/queues"},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %s, want %s", what, got[0], got[1])
		}
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]string{"7d": "168h0m0s", "2w": "336h0m0s", "90d": "2160h0m0s", "36h": "36h0m0s", "0d": "0s"} {
		got, err := ParseAge(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7x", "-1d", "7dd", "w7"} {
		if _, err := ParseAge(bad); err == nil {
			t.Errorf("ParseAge(%q) accepted", bad)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"registry_http_addr", "debug_addr", "log_level", "token_realm"}
	for in, want := range map[string]string{
		"registry_htp_addr": "registry_http_addr", "debugaddr": "debug_addr", "loglevel": "log_level",
		"completely_unrelated_key": "",
	} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanupPolicyThatCanDeleteEveryTagWarns(t *testing.T) {
	tests := []struct {
		name, policy string
		warn         bool
	}{
		{"deletes all", `name_regex = ".*"`, true},
		{"keep_n", "name_regex = \".*\"\nkeep_n = 1", false},
		{"keep regex", "name_regex = \".*\"\nname_regex_keep = \"main\"", false},
		{"age", "name_regex = \".*\"\nolder_than = \"7d\"", false},
		{"no name_regex deletes nothing", `keep_n = 0`, false},
		{"disabled", "name_regex = \".*\"\nenabled = false", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "[[registry.cleanup_policies]]\nname = \"p\"\nrepositories = [\"g/**\"]\nenabled = true\n" + tt.policy + "\n"
			if strings.Contains(tt.policy, "enabled") {
				src = strings.Replace(src, "enabled = true\n", "", 1)
			}
			l, err := Parse("/etc/regctl/regctl.toml", []byte(src))
			if err != nil {
				t.Fatalf("a warning must not make the settings invalid: %v", err)
			}
			if !tt.warn {
				if len(l.Warnings) != 0 {
					t.Errorf("unexpected warnings: %v", l.Warnings)
				}
				return
			}
			if len(l.Warnings) != 1 {
				t.Fatalf("want 1 warning, got %v", l.Warnings)
			}
			w := l.Warnings[0]
			if w.Key != "registry.cleanup_policies[0].name_regex" || w.Line != 5 || !strings.Contains(w.Message, "can delete every tag") {
				t.Errorf("warning = %s (line %d)", w.Error(), w.Line)
			}
		})
	}
}

// A policy without enabled = true is valid (GitLab's default) but gets a
// warning of its own, at its enabled key, or at its header when the key
// is not set; it is not among the Warnings every command shows.
func TestDisabledCleanupPolicyWarns(t *testing.T) {
	src := `[[registry.cleanup_policies]]
name = "unset"
repositories = ["a/**"]

[[registry.cleanup_policies]]
name = "on"
repositories = ["b/**"]
enabled = true

[[registry.cleanup_policies]]
name = "off"
repositories = ["c/**"]
enabled = false
`
	l, err := Parse("/etc/regctl/regctl.toml", []byte(src))
	if err != nil {
		t.Fatalf("disabled policies must not make the settings invalid: %v", err)
	}
	if len(l.Warnings) != 0 {
		t.Errorf("Warnings = %v, want none", l.Warnings)
	}
	ws := l.DisabledPolicyWarnings()
	if len(ws) != 2 {
		t.Fatalf("want 2 warnings, got %v", ws)
	}
	for i, want := range []struct {
		line       int
		key, words string
	}{
		{1, "registry.cleanup_policies[0].enabled", `policy "unset" is disabled (enabled is not set, and GitLab's default is false): registry-cleanup skips it`},
		{13, "registry.cleanup_policies[2].enabled", `policy "off" is disabled (enabled = false): registry-cleanup skips it`},
	} {
		if w := ws[i]; w.File != "/etc/regctl/regctl.toml" || w.Line != want.line || w.Key != want.key || !strings.Contains(w.Message, want.words) {
			t.Errorf("warning %d = %s (line %d), want line %d, key %s, %q", i, w.Error(), w.Line, want.line, want.key, want.words)
		}
	}
	if !strings.HasSuffix(ws[0].Message, "to run it, add enabled = true to the policy") || !strings.HasSuffix(ws[1].Message, "to run it, set enabled = true") {
		t.Errorf("fixes: %q, %q", ws[0].Message, ws[1].Message)
	}
	if l.DisabledPolicyWarning(1) != nil || l.DisabledPolicyWarning(3) != nil || l.DisabledPolicyWarning(-1) != nil {
		t.Error("a warning for an enabled or missing policy")
	}
}

// IsSet and Line reach into arrays of tables by index.
func TestIsSetArrayElements(t *testing.T) {
	l, err := Parse("/s/regctl.toml", []byte("[[registry.notifications]]\nname = \"a\"\nurl = \"http://x\"\n\n"+
		"[[registry.notifications]]\nname = \"b\"\nurl = \"http://y\"\ntimeout = \"1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		line int
	}{
		{[]string{"registry", "notifications", "1", "timeout"}, 8},
		{[]string{"registry", "notifications", "1"}, 5},
		{[]string{"registry", "notifications", "0", "timeout"}, 0},
		{[]string{"registry", "notifications", "2"}, 0},
		{[]string{"registry", "notifications", "-1"}, 0},
		{[]string{"registry", "notifications", "+1"}, 0},
	} {
		if got := l.Line(tc.path...); got != tc.line || l.IsSet(tc.path...) != (tc.line > 0) {
			t.Errorf("Line(%v) = %d, IsSet %v; want %d", tc.path, got, l.IsSet(tc.path...), tc.line)
		}
	}
	// An array of inline tables.
	l, err = Parse("/s/regctl.toml", []byte("[registry]\ncleanup_policies = [\n  { name = \"a\", repositories = [\"x\"] },\n"+
		"  { name = \"b\", repositories = [\"y\"], enabled = false },\n]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !l.IsSet("registry", "cleanup_policies", "1", "enabled") || l.IsSet("registry", "cleanup_policies", "0", "enabled") {
		t.Error("IsSet does not reach into an array of inline tables")
	}
}
