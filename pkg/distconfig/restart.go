package distconfig

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
)

// RestartReasons names what differs between the config a daemon runs
// (old) and a new one that a reload (SIGHUP) cannot apply to it: the
// listener, TLS, the storage driver and its parameters, and every other
// setting read only at startup. It is empty when a reload applies the
// whole change. The daemon's Reload (pkg/serve) warns with it, and
// reconfigure decides between a reload and a restart with it
// (CompareConfigs), so the two agree on what reloads: auth, the
// configured read-only mode, the log level and regctl.referrers, the
// settings Reload applies and this function ignores.
func RestartReasons(old, cur *Config) []string {
	var reasons []string
	differ := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			reasons = append(reasons, key)
		}
	}
	o, n := old, cur
	differ("http.addr", o.HTTP.Addr, n.HTTP.Addr)
	differ("http.net", o.HTTP.Net, n.HTTP.Net)
	differ("http.tls", o.HTTP.TLS, n.HTTP.TLS)
	differ("http.secret", o.HTTP.Secret, n.HTTP.Secret)
	differ("http.headers", o.HTTP.Headers, n.HTTP.Headers)
	differ("http.relativeurls", o.HTTP.RelativeURLs, n.HTTP.RelativeURLs)
	differ("http.draintimeout", o.HTTP.DrainTimeout, n.HTTP.DrainTimeout)
	differ("http.debug", o.HTTP.Debug, n.HTTP.Debug)
	if o.Storage.Driver != n.Storage.Driver {
		reasons = append(reasons, fmt.Sprintf("storage driver (%s -> %s)", o.Storage.Driver, n.Storage.Driver))
	} else {
		differ("storage."+n.Storage.Driver, o.Storage.Params, n.Storage.Params)
	}
	differ("storage.delete", o.Storage.DeleteEnabled, n.Storage.DeleteEnabled)
	differ("storage.redirect", o.Storage.RedirectDisabled, n.Storage.RedirectDisabled)
	differ("storage.cache", o.Storage.Cache, n.Storage.Cache)
	differ("storage.maintenance.uploadpurging", o.Storage.UploadPurging, n.Storage.UploadPurging)
	differ("storage.tag", o.Storage.TagConcurrencyLimit, n.Storage.TagConcurrencyLimit)
	differ("log.formatter", o.Log.Formatter, n.Log.Formatter)
	differ("log.fields", o.Log.Fields, n.Log.Fields)
	differ("health", o.Health, n.Health)
	differ("notifications", o.Notifications, n.Notifications)
	differ("redis", o.Redis, n.Redis)
	differ("validation", o.Validation, n.Validation)
	differ("compatibility", o.Compatibility, n.Compatibility)
	if len(reasons) == 0 {
		// A field added to Config later and not named above
		// still asks for a restart rather than being silently ignored.
		a, b := *o, *n
		for _, c := range []*Config{&a, &b} {
			c.Auth, c.Storage.ReadOnly, c.Log.Level, c.Referrers = nil, false, "", Referrers{}
		}
		if !reflect.DeepEqual(a, b) {
			reasons = append(reasons, "other settings")
		}
	}
	return reasons
}

// CompareConfigs is RestartReasons on two config.yml texts, parsed as
// regctl serve parses them (REGISTRY_* overrides included). An old text
// that does not parse asks for a restart: what the daemon runs is
// unknown.
func CompareConfigs(oldYML, newYML []byte) ([]string, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cur, err := Parse("config.yml", newYML, quiet)
	if err != nil {
		return nil, err
	}
	old, err := Parse("config.yml (before)", oldYML, quiet)
	if err != nil {
		return []string{"the previous config.yml did not parse"}, nil
	}
	return RestartReasons(old, cur), nil
}
