package reconfigure

import (
	"slices"
	"strings"
	"testing"
)

// redactYAML hides values however YAML writes them, and leaves the rest
// of the text as it was.
func TestRedactYAML(t *testing.T) {
	secret := [][]string{{"a", "s"}, {"list"}, {"t", "*"}}
	tests := []struct{ name, in, want string }{
		{"plain", "a:\n  s: SECRET # note\n  x: 1\n", "a:\n  s: \"<redacted>\" # note\n  x: 1\n"},
		{"double-quoted", "a:\n  s: \"SEC\\\"RET\"\n", "a:\n  s: \"<redacted>\"\n"},
		{"single-quoted", "a:\n  s: 'SEC''RET'\n", "a:\n  s: \"<redacted>\"\n"},
		{"quoted on two lines", "a:\n  s: \"SEC\n    RET\"\n  x: 1\n", "a:\n  s: \"<redacted>\"\n  x: 1\n"},
		{"plain on two lines", "a:\n  s: SEC\n    RET\n  x: 1\n", "a:\n  s: \"<redacted>\"\n  x: 1\n"},
		{"literal block", "a:\n  s: |-\n    SEC\n    RET\n  x: 1\n", "a:\n  s: \"<redacted>\"\n  x: 1\n"},
		{"folded block", "a:\n  s: >\n    SEC\n    RET\n\n  x: 1\n", "a:\n  s: \"<redacted>\"\n\n  x: 1\n"},
		{"kept block at the end", "a:\n  s: |+\n    SEC\n    RET\n\n", "a:\n  s: \"<redacted>\"\n\n"},
		{"block in a list", "list:\n- |\n  SEC\n  RET\n- other\nx: 1\n", "list:\n- \"<redacted>\"\n- \"<redacted>\"\nx: 1\n"},
		{"flow", "t: {k: SECRET, n: \"SE\n  CRET\"}\nx: 1\n", "t: {k: \"<redacted>\", n: \"<redacted>\"}\nx: 1\n"},
		{"nested table", "t:\n  c:\n    k: SECRET\n", "t:\n  c:\n    k: \"<redacted>\"\n"},
		{"number", "a:\n  s: 55554444\nt:\n  k: 55554444\n", "a:\n  s: \"<redacted>\"\nt:\n  k: \"<redacted>\"\n"},
		{"after other text", "ü: \"ümlaut\"\na: {s: SECRET}\n", "ü: \"ümlaut\"\na: {s: \"<redacted>\"}\n"},
		{"empty and null", "a:\n  s:\n  x: \"\"\n", "a:\n  s:\n  x: \"\"\n"},
		{"URL", "u: https://user:PASSWORD@host/p?token=TOKEN\n", "u: \"https://user:xxxxx@host/p?token=xxxxx\"\n"},
		{"nothing secret", "# c\nx: 1\ny: [a, b]\n", "# c\nx: 1\ny: [a, b]\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redactYAML([]byte(tt.in), secret)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	for _, in := range []string{"a: &x SECRET\nb: *x\n", "a:\n  s: [SECRET\n", "<<: {a: 1}\n", "a:\n  s: !!str SECRET\n"} {
		if got, err := redactYAML([]byte(in), secret); err == nil {
			t.Errorf("%q: no error, got %q", in, got)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%q: the error quotes the secret: %v", in, err)
		}
	}
}

// Where the rendered files hold secrets is learned from the schema: every
// secret key lands somewhere it is hidden.
func TestSecretPathsLearned(t *testing.T) {
	paths, err := secretPaths()
	if err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string][][]string{
		"config.yml": {{"http", "secret"}, {"storage", "s3", "secretkey"}, {"storage", "s3", "sessiontoken"},
			{"storage", "azure", "*"}, {"redis", "password"}, {"redis", "sentinelpassword"},
			{"notifications", "endpoints", "*", "headers", "*"}},
		"gitlab.yml": {{"production", "registry", "notification_secret"}},
	} {
		for _, p := range want {
			if !slices.ContainsFunc(paths[role], func(q []string) bool { return slices.Equal(p, q) }) {
				t.Errorf("%s: %v not learned; learned %v", role, p, paths[role])
			}
		}
	}
}
