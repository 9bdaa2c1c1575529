package archtest

import (
	"slices"
	"sort"
	"testing"
)

// settingsUsers read regctl.toml through pkg/settings and never need
// the renderer.
var settingsUsers = []string{"regctl/pkg/cleanup", "regctl/pkg/service", "regctl/pkg/migrate"}

// TestSettingsUsersDoNotDependOnReconfigure: the packages that read
// regctl.toml depend on pkg/settings, not on pkg/reconfigure, directly
// or through another package, nor in their tests.
func TestSettingsUsersDoNotDependOnReconfigure(t *testing.T) {
	t.Parallel()
	const renderer = "regctl/pkg/reconfigure"
	for _, pkg := range settingsUsers {
		imports := pkgImports(t, pkg, true)
		var importers []string
		for p, imps := range imports {
			if slices.Contains(imps, renderer) {
				importers = append(importers, p)
			}
		}
		sort.Strings(importers)
		for _, p := range importers {
			t.Errorf("%s depends on %s: %s imports it", pkg, renderer, p)
		}
	}
}
