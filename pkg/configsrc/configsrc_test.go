package configsrc

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regctl/pkg/settings"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFindAndLoad(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	cfgPath := filepath.Join(dir, "config.yml")
	write(t, cfgPath, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+filepath.Join(dir, "root")+"\nhttp:\n  addr: 127.0.0.1:5999\n")
	missing := filepath.Join(dir, "regctl.toml")

	// CONFIG wins over everything.
	src, err := Find(cfgPath, missing, true, log)
	if err != nil || src.Path != cfgPath || src.Embedded || src.Config.HTTP.Addr != "127.0.0.1:5999" {
		t.Fatalf("Find(CONFIG) = %+v, %v", src, err)
	}
	if cfg, path, err := Load(cfgPath, missing, log); err != nil || path != cfgPath || cfg.Storage.Driver != "filesystem" {
		t.Fatalf("Load(CONFIG) = %+v, %s, %v", cfg, path, err)
	}

	// No settings: serve runs the embedded default, unless the settings
	// were named; maintenance commands never do.
	src, err = Find("", missing, false, log)
	if err != nil || !src.Embedded || src.Path != "" || !strings.HasSuffix(src.Config.Storage.Params["rootdirectory"].(string), DefaultDataDir) {
		t.Fatalf("Find(nothing) = %+v, %v; want the embedded default", src, err)
	}
	if _, err := Find("", missing, true, log); !errors.Is(err, settings.ErrNoSettings) {
		t.Errorf("Find(named settings missing) = %v, want ErrNoSettings", err)
	}
	if _, _, err := Load("", missing, log); !errors.Is(err, settings.ErrNoSettings) {
		t.Errorf("Load(no settings) = %v, want ErrNoSettings", err)
	}

	// Settings not rendered yet: say to run reconfigure.
	write(t, missing, "data_dir = \"data\"\n")
	if _, _, err := Load("", missing, log); err == nil || !strings.Contains(err.Error(), "regctl reconfigure") {
		t.Errorf("Load(settings, nothing rendered) = %v, want a hint to run reconfigure", err)
	}
}
