package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"regctl/pkg/distconfig"
	"regctl/pkg/settings"
)

// DefaultDataDir is where the embedded default keeps its storage,
// relative to the working folder.
const DefaultDataDir = "regctl-data"

// ConfigSource says which config serve runs and why.
type ConfigSource struct {
	Config *distconfig.Config
	// Path is the config file, "" for the embedded default.
	Path string
	// Embedded is true when no config and no settings exist.
	Embedded bool
}

// FindConfig picks the config `regctl serve` runs, in this order: the
// CONFIG argument; the config.yml rendered from the settings file; and,
// when there is no settings file at the default location either, the
// embedded default (loopback, ./regctl-data, no auth). A settings file
// named explicitly must exist.
func FindConfig(configArg, settingsPath string, settingsExplicit bool, log *slog.Logger) (*ConfigSource, error) {
	if configArg != "" {
		cfg, err := distconfig.Load(configArg, log)
		if err != nil {
			return nil, err
		}
		return &ConfigSource{Config: cfg, Path: configArg}, nil
	}
	l, err := settings.Load(settingsPath)
	switch {
	case errors.Is(err, settings.ErrNoSettings) && !settingsExplicit:
		root, err := filepath.Abs(DefaultDataDir)
		if err != nil {
			return nil, err
		}
		cfg, err := embeddedDefault(root, log)
		if err != nil {
			return nil, err
		}
		return &ConfigSource{Config: cfg, Embedded: true}, nil
	case err != nil:
		return nil, err
	}
	cfg, path, err := renderedConfig(l, log)
	if err != nil {
		return nil, err
	}
	return &ConfigSource{Config: cfg, Path: path}, nil
}

// LoadConfig is the config a maintenance command works on, as gitlab-ctl
// does it: CONFIG when given, else the config.yml rendered from the
// settings file. There is no embedded default here: collecting garbage
// in an accidental ./regctl-data would help nobody.
func LoadConfig(configArg, settingsPath string, log *slog.Logger) (*distconfig.Config, string, error) {
	if configArg != "" {
		cfg, err := distconfig.Load(configArg, log)
		return cfg, configArg, err
	}
	l, err := settings.Load(settingsPath)
	if err != nil {
		return nil, "", err
	}
	return renderedConfig(l, log)
}

func renderedConfig(l *settings.Loaded, log *slog.Logger) (*distconfig.Config, string, error) {
	path := l.Resolve().ConfigYML
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("%s does not exist: run `regctl reconfigure` first, or pass a config file", path)
	}
	cfg, err := distconfig.Load(path, log)
	return cfg, path, err
}

// embeddedDefault is distconfig.Default(root) with the REGISTRY_*
// environment overrides applied, as they are to a config file
// (REGISTRY_HTTP_ADDR moves it off 127.0.0.1:5000, say): the default is
// written as the config.yml it stands for and parsed like one.
func embeddedDefault(root string, log *slog.Logger) (*distconfig.Config, error) {
	d := distconfig.Default(root)
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: %s\n  formatter: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\n"+
		"  delete:\n    enabled: %t\nhttp:\n  addr: %s\n",
		d.Log.Level, d.Log.Formatter, strconv.Quote(root), d.Storage.DeleteEnabled, strconv.Quote(d.HTTP.Addr))
	return distconfig.Parse("(embedded default)", []byte(yml), log)
}
