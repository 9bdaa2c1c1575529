package cmd

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"regctl/pkg/reconfigure"
	"regctl/pkg/settings"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	r := mustCode(t, 0, "--version")
	if want := "regctl version " + Version + "\n"; r.stdout != want {
		t.Errorf("--version printed %q, want %q", r.stdout, want)
	}
}

// Every command and subcommand documents itself with examples.
func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	root, _ := NewRootCmd(io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	count := 0
	walk = func(c *cobra.Command) {
		count++
		path := strings.Fields(c.CommandPath())[1:] // without "regctl"
		t.Run(strings.Join(append([]string{"regctl"}, path...), "_"), func(t *testing.T) {
			if strings.TrimSpace(c.Example) == "" {
				t.Errorf("%q has no Example", c.CommandPath())
			}
			r := mustCode(t, 0, append(path, "--help")...)
			mustContain(t, c.CommandPath()+" --help", r.stdout, "Examples:", strings.TrimSpace(c.Example))
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// root, reconfigure, certs (+3), registry-readonly (+3)
	if count < 9 {
		t.Errorf("walked %d commands, want at least 9", count)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir, settings := newSettings(t, "data_dir = \"data\"\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown flag on root", []string{"--bogus"}, "unknown flag: --bogus"},
		{"unknown flag on subcommand", []string{"reconfigure", "--bogus", "--settings", settings}, "unknown flag: --bogus"},
		{"unknown flag on sub-subcommand", []string{"certs", "verify", "--bogus", "--settings", settings}, "unknown flag: --bogus"},
		{"unexpected argument", []string{"reconfigure", "extra", "--settings", settings}, `unknown command "extra"`},
		{"output yaml", []string{"reconfigure", "--output", "yaml", "--settings", settings}, `--output must be text or json, not "yaml"`},
		{"output yaml short flag", []string{"registry-readonly", "status", "-o", "yaml", "--settings", settings}, "text or json"},
		{"output yaml before command", []string{"-o", "yaml", "certs", "verify", "--settings", settings}, "text or json"},
		// A group command given an unknown subcommand prints its help and
		// exits 0 today (cobra treats a non-runnable command's arguments
		// as a help request); it should fail like an unknown command.
		{"unknown certs subcommand", []string{"certs", "bogus"}, `unknown command "bogus"`},
		{"unknown registry-readonly subcommand", []string{"registry-readonly", "bogus"}, `unknown command "bogus"`},
	}
	before := snapshot(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := regctl(t, tt.args...)
			if r.code != 2 {
				t.Fatalf("want exit 2, got %s", r)
			}
			mustContain(t, "stderr", r.stderr, "error: ", tt.wantErr)
		})
	}
	sameTree(t, before, snapshot(t, dir))
}

// statusSource runs registry-readonly status -o json, which needs no
// rendered files and says which settings file (and line) it read.
func statusSource(t *testing.T, args ...string) (result, reconfigure.ReadOnlyState) {
	t.Helper()
	r := regctl(t, append([]string{"registry-readonly", "status", "-o", "json"}, args...)...)
	var st reconfigure.ReadOnlyState
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, r)
		}
	}
	return r, st
}

// Not parallel: it sets REGCTL_SETTINGS.
func TestSettingsPathPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagFile := filepath.Join(dir, "flag.toml")
	envFile := filepath.Join(dir, "env.toml")
	missing := filepath.Join(dir, "missing.toml")
	// The readonly key sits on a different line in each file, so the
	// reported source names both the file and the line.
	writeFile(t, flagFile, "data_dir = \"data\"\n[registry.storage.maintenance.readonly]\nenabled = true\n", 0o644)
	writeFile(t, envFile, "data_dir = \"data\"\n\n\n[registry.storage.maintenance.readonly]\nenabled = false\n", 0o644)

	tests := []struct {
		name       string
		env        string
		args       []string
		wantSource string // on success
		wantMiss   string // the missing path, on exit 2
	}{
		{name: "flag only", args: []string{"--settings", flagFile}, wantSource: flagFile + ":3"},
		{name: "env only", env: envFile, wantSource: envFile + ":5"},
		{name: "flag beats env", env: envFile, args: []string{"--settings", flagFile}, wantSource: flagFile + ":3"},
		{name: "missing flag file beats valid env", env: envFile, args: []string{"--settings", missing}, wantMiss: missing},
		{name: "missing env file", env: missing, wantMiss: missing},
		{name: "default", wantMiss: settings.DefaultSettingsPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("REGCTL_SETTINGS", tt.env)
			if tt.env == "" && len(tt.args) == 0 {
				if _, err := os.Stat(settings.DefaultSettingsPath); err == nil {
					t.Skipf("%s exists on this machine", settings.DefaultSettingsPath)
				}
			}
			r, st := statusSource(t, tt.args...)
			if tt.wantMiss != "" {
				if r.code != 2 {
					t.Fatalf("want exit 2, got %s", r)
				}
				mustContain(t, "stderr", r.stderr, "settings file not found", tt.wantMiss,
					"hint: pass --settings FILE or set REGCTL_SETTINGS")
				if r.stdout != "" {
					t.Errorf("stdout should be empty:\n%s", r.stdout)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("want exit 0, got %s", r)
			}
			if st.Source != tt.wantSource {
				t.Errorf("read %q, want %q", st.Source, tt.wantSource)
			}
		})
	}
}
