package settings

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The commands' packages that read regctl.toml need this package, not
// the renderer: pkg/cleanup, pkg/service and pkg/migrate must not depend
// on pkg/reconfigure, directly or through another package, nor in their
// tests.
func TestSettingsUsersDoNotDependOnReconfigure(t *testing.T) {
	const banned = "regctl/pkg/reconfigure"
	for _, pkg := range []string{"regctl/pkg/cleanup", "regctl/pkg/service", "regctl/pkg/migrate"} {
		out, err := exec.Command("go", "list", "-deps", "-test", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line) // a test variant's path has a second field, "[x.test]"
			if slices.Contains(fields[1:], banned) && !seen[fields[0]] {
				seen[fields[0]] = true
				t.Errorf("%s depends on %s (%s imports it)", pkg, banned, fields[0])
			}
		}
	}
}
