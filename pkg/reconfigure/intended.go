package reconfigure

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"sort"
	"strconv"

	"github.com/goccy/go-yaml"

	"regctl/pkg/settings"
)

// configData is what config.yml.tmpl renders.
type configData struct {
	Settings            string // the settings file, named in the header comment
	LogLevel            string
	LogFormatter        string
	Storage             map[string]any
	Addr                string
	Secret              string
	RelativeURLs        bool
	DebugAddr           string
	HealthStoragedriver bool
	Realm               string
	Issuer              string
	RootCertBundle      string
	Validation          bool
	Schema1             bool
	Notifications       []notificationView
	QueueDir            string
	QueueMaxEvents      int
	Redis               map[string]any
	Cluster             *settings.Cluster
	FallbackTags        bool
}

// gitlabData is what gitlab.yml.tmpl renders.
type gitlabData struct {
	Settings                 string
	DefaultContainerRegistry bool
	Enabled                  bool
	Host                     string
	Port                     int // 0: left out
	APIURL                   string
	Key                      string
	Path                     string
	Issuer                   string
	NotificationSecret       string
}

// The intended trees below say what each rendered file must mean, built
// from the same data the template gets. The template decides the layout
// and the comments; checkRendered parses its output back and compares it
// with this tree, so a value that a template or the quoting gets wrong
// (a new key, another type, a lost space) stops reconfigure before
// anything is written. A change to a template needs the same change
// here: the golden tests fail until both agree.

func (d *configData) tree() map[string]any {
	http := map[string]any{
		"addr": d.Addr, "secret": d.Secret, "relativeurls": d.RelativeURLs,
		"headers": map[string]any{"X-Content-Type-Options": []any{"nosniff"}},
	}
	if d.DebugAddr != "" {
		http["debug"] = map[string]any{"addr": d.DebugAddr, "prometheus": map[string]any{"enabled": true, "path": "/metrics"}}
	}
	eps := make([]any, len(d.Notifications))
	for i, ep := range d.Notifications {
		eps[i] = ep.tree()
	}
	var cluster map[string]any
	if d.Cluster != nil {
		cluster = map[string]any{"enabled": d.Cluster.Enabled, "heartbeat": d.Cluster.Heartbeat}
	}
	t := map[string]any{
		"version": 0.1,
		"log": map[string]any{
			"level": d.LogLevel, "formatter": d.LogFormatter, "fields": map[string]any{"service": "registry"},
		},
		"storage": d.Storage,
		"http":    http,
		"health": map[string]any{"storagedriver": map[string]any{
			"enabled": d.HealthStoragedriver, "interval": "10s", "threshold": 3,
		}},
		"auth": map[string]any{"token": map[string]any{
			"realm": d.Realm, "service": "container_registry", "issuer": d.Issuer,
			"rootcertbundle": d.RootCertBundle, "autoredirect": false,
		}},
		"validation": map[string]any{"disabled": !d.Validation},
	}
	maps.Copy(t, present(map[string]any{
		"compatibility": present(map[string]any{"schema1": present(map[string]any{"enabled": d.Schema1})}),
		"redis":         d.Redis,
		"regctl": present(map[string]any{
			"cluster": cluster, "referrers": present(map[string]any{"fallbacktags": d.FallbackTags}),
		}),
	}))
	if len(eps) > 0 {
		t["notifications"] = present(map[string]any{
			"endpoints": eps, "queue": present(map[string]any{"directory": d.QueueDir, "maxevents": d.QueueMaxEvents}),
		})
	}
	return t
}

func (v *notificationView) tree() map[string]any {
	ep := map[string]any{
		"name": v.Name, "url": v.URL, "disabled": v.Disabled, "timeout": v.Timeout,
		"threshold": v.Retries, "maxretries": v.Retries, "backoff": v.Backoff,
	}
	maps.Copy(ep, present(map[string]any{
		"headers": v.Headers, "ignoredmediatypes": v.IgnoredMediaTypes,
		"ignore": present(map[string]any{"mediatypes": v.Ignore.MediaTypes, "actions": v.Ignore.Actions}),
	}))
	return ep
}

func (d *gitlabData) tree() map[string]any {
	registry := map[string]any{
		"enabled": d.Enabled, "host": d.Host, "api_url": d.APIURL, "key": d.Key,
		"path": d.Path, "issuer": d.Issuer, "notification_secret": d.NotificationSecret,
	}
	maps.Copy(registry, present(map[string]any{"port": d.Port}))
	return map[string]any{"production": map[string]any{
		"gitlab":   map[string]any{"default_projects_features": map[string]any{"container_registry": d.DefaultContainerRegistry}},
		"registry": registry,
	}}
}

// present keeps the entries that a template's {{ if }} writes: those
// whose value is not empty (false, 0, "", nil, or no items).
func present(m map[string]any) map[string]any {
	for k, v := range m {
		r := reflect.ValueOf(v)
		if !r.IsValid() || r.IsZero() || (r.Kind() == reflect.Map || r.Kind() == reflect.Slice) && r.Len() == 0 {
			delete(m, k)
		}
	}
	return m
}

// checkRendered parses a rendered file back and compares it with the
// tree it is meant to say. The error names the file and the first key
// that differs (keys in sorted order), never a value: values may be
// secrets.
func checkRendered(path string, content []byte, want map[string]any) error {
	var got any
	if err := yaml.Unmarshal(content, &got); err != nil {
		return fmt.Errorf("refusing to write %s: the rendered YAML does not parse back: %w", path, err)
	}
	if err := compareTree(nil, want, got); err != nil {
		return fmt.Errorf("refusing to write %s: parsed back, it does not say what the settings say: %w", path, err)
	}
	return nil
}

// compareTree compares want (maps, slices and scalars of any Go type)
// with got (as the YAML library decodes: map[string]any, []any, strings,
// booleans, int64, uint64 and float64).
func compareTree(path []string, want, got any) error {
	at := func(seg string) []string { return append(append([]string(nil), path...), seg) }
	w := reflect.ValueOf(want)
	switch w.Kind() {
	case reflect.Map:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: is %s, want a table", settings.KeyString(path), yamlKind(got))
		}
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		for _, k := range w.MapKeys() {
			if _, ok := g[k.String()]; !ok {
				keys = append(keys, k.String())
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv, gv := w.MapIndex(reflect.ValueOf(k)), g[k]
			if !wv.IsValid() {
				return fmt.Errorf("%s: a key the settings do not make", settings.KeyString(at(k)))
			}
			if _, ok := g[k]; !ok {
				return fmt.Errorf("%s: missing", settings.KeyString(at(k)))
			}
			if err := compareTree(at(k), wv.Interface(), gv); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		g, ok := got.([]any)
		if !ok || len(g) != w.Len() {
			return fmt.Errorf("%s: is %s, want a list of %d", settings.KeyString(path), yamlKind(got), w.Len())
		}
		for i := range g {
			if err := compareTree(at(strconv.Itoa(i)), w.Index(i).Interface(), g[i]); err != nil {
				return err
			}
		}
		return nil
	}
	switch {
	case sameScalar(want, got):
		return nil
	case yamlKind(want) == yamlKind(got):
		return fmt.Errorf("%s: is not the %s the settings give", settings.KeyString(path), yamlKind(got)[2:])
	}
	return fmt.Errorf("%s: is %s, want %s", settings.KeyString(path), yamlKind(got), yamlKind(want))
}

func sameScalar(want, got any) bool {
	if wi, ok := asInt(want); ok {
		gi, ok := asInt(got)
		return ok && wi == gi
	}
	if wf, ok := want.(float64); ok {
		gf, ok := got.(float64)
		return ok && (wf == gf || math.IsNaN(wf) && math.IsNaN(gf))
	}
	return want == got
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// yamlKind names a value's type, never the value.
func yamlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", v)
}
