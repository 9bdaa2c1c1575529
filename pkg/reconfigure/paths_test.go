package reconfigure

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"regctl/pkg/settings"
)

// A control character in a path is refused, naming the key: paths go
// into YAML, comments, logs and shells.
func TestPathSettingsRefuseControlCharacters(t *testing.T) {
	paths := [][]string{
		{"data_dir"}, {"registry", "rootcertbundle"}, {"registry", "notifications_queue_directory"},
		{"registry", "storage", "filesystem", "rootdirectory"}, {"registry", "storage", "s3", "rootdirectory"},
		{"migration", "s3", "rootdirectory"}, {"registry", "redis", "tls", "certificate"},
		{"registry", "redis", "tls", "key"}, {"registry", "redis", "tls", "rootcas"},
		{"gitlab_rails", "registry_key_path"}, {"gitlab_rails", "registry_path"},
	}
	for _, path := range paths {
		k := settingKey{path: path, kind: settings.KString}
		if path[len(path)-1] == "rootcas" {
			k.kind = settings.KStringList
		}
		for _, bad := range []string{"a\nevil: 1", "a\rb", "a\x00b", "a\tb", "a\x1bb", "a\x7fb", "a\u0085b", "a\u2028b"} {
			_, err := settings.Parse(scenarioSettingsPath, settingsWith(t, k, "/srv/"+bad))
			if !namesKey(err, settings.KeyString(path)) || !strings.Contains(err.Error(), "control character") {
				t.Errorf("%s = %q: err = %v, want a control character problem at the key", settings.KeyString(path), bad, err)
			}
		}
	}
}

// A settings file whose path has a control character is refused: the
// path goes into the rendered files' header comment. The error quotes it.
func TestSettingsPathWithControlCharacterRefused(t *testing.T) {
	bad := "/tmp/a\nevil: 1/regctl.toml"
	_, err := settings.Parse(bad, nil)
	var inv *settings.InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("Parse(%q) = %v, want invalid settings naming the control character", bad, err)
	}
	if strings.Contains(err.Error(), "\nevil") || !strings.Contains(err.Error(), strconv.Quote(bad)) {
		t.Errorf("the error does not quote the path: %v", err)
	}
}
