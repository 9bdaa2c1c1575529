package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"regctl/pkg/distconfig"
	"regctl/pkg/reconfigure"
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
	l, err := reconfigure.Load(settingsPath)
	switch {
	case errors.Is(err, reconfigure.ErrNoSettings) && !settingsExplicit:
		root, err := filepath.Abs(DefaultDataDir)
		if err != nil {
			return nil, err
		}
		return &ConfigSource{Config: distconfig.Default(root), Embedded: true}, nil
	case err != nil:
		return nil, err
	}
	path := l.Resolve().ConfigYML
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s does not exist: run `regctl reconfigure` first, or pass a config file", path)
	}
	cfg, err := distconfig.Load(path, log)
	if err != nil {
		return nil, err
	}
	return &ConfigSource{Config: cfg, Path: path}, nil
}
