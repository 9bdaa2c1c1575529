package suggest

import "testing"

func TestNearest(t *testing.T) {
	known := []string{"registry_http_addr", "debug_addr", "log_level", "rootdirectory", "enabled"}
	for in, want := range map[string]string{
		"registry_htp_addr":        "registry_http_addr", // a typo
		"Log_Level":                "log_level",          // case
		"rootdir":                  "rootdirectory",      // an abbreviation
		"enabeld":                  "enabled",
		"completely_unrelated_key": "",
	} {
		if got := Nearest(in, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", in, got, want)
		}
	}
}
