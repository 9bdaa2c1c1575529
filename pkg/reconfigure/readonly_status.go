package reconfigure

import (
	"errors"
	"fmt"
	"io/fs"

	"regctl/pkg/settings"
)

// ReadOnlyState says whether read-only mode is on and where that comes from.
type ReadOnlyState struct {
	Enabled bool `json:"enabled"`
	// Source is "file:line" of the setting, or "default".
	Source string `json:"source"`
	Key    string `json:"key"`
	// Rendered is what config.yml says; nil when it does not exist yet.
	Rendered  *bool  `json:"rendered"`
	ConfigYML string `json:"config_yml"`
	// InSync is false when reconfigure has not yet been run since the
	// setting changed.
	InSync bool `json:"in_sync"`
}

// ReadOnlyStatus reports the effective read-only state.
func ReadOnlyStatus(l *settings.Loaded) (ReadOnlyState, error) {
	st := ReadOnlyState{Enabled: l.Settings.ReadOnly(), Source: "default", Key: settings.KeyString(settings.ReadOnlyKey)}
	if line := l.Line(settings.ReadOnlyKey...); line > 0 {
		st.Source = fmt.Sprintf("%s:%d", l.Path, line)
	}
	st.ConfigYML = l.Resolve().ConfigYML
	var cfg struct {
		Storage struct {
			Maintenance struct {
				Readonly struct {
					Enabled bool `yaml:"enabled"`
				} `yaml:"readonly"`
			} `yaml:"maintenance"`
		} `yaml:"storage"`
	}
	err := readYAML(st.ConfigYML, &cfg)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, err
	default:
		on := cfg.Storage.Maintenance.Readonly.Enabled
		st.Rendered = &on
	}
	st.InSync = st.Rendered != nil && *st.Rendered == st.Enabled
	return st, nil
}
