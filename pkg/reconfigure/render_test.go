package reconfigure

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"

	"regctl/pkg/settings"
)

var update = flag.Bool("update", false, "rewrite golden files")

// scenarioSettingsPath is where every scenario claims to live, so that
// golden files hold stable absolute paths.
const scenarioSettingsPath = "/etc/regctl/regctl.toml"

// fixedSecrets keeps golden files stable: certificates are not rendered
// into config.yml or gitlab.yml, only their paths.
var fixedSecrets = RegistrySecrets{
	HTTPSecret:          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	InternalKey:         "KEY",
	InternalCertificate: "CERT",
}

func scenarios(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(repoTestdata(t), "scenarios", "*"))
	if err != nil || len(dirs) < 7 {
		t.Fatalf("want at least 7 scenarios, found %d (%v)", len(dirs), err)
	}
	return dirs
}

func repoTestdata(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func loadScenario(t *testing.T, dir string) *settings.Loaded {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "regctl.toml"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := settings.Parse(scenarioSettingsPath, src)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(dir), err)
	}
	return l
}

// TestRenderGolden renders each admin-guide scenario and compares it with
// its golden files (go test ./pkg/reconfigure -update rewrites them).
func TestRenderGolden(t *testing.T) {
	for _, dir := range scenarios(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			l := loadScenario(t, dir)
			files, _, err := Render(l, effectiveFixed(l))
			if err != nil {
				t.Fatal(err)
			}
			rendered := map[string][]byte{}
			for _, f := range files {
				rendered[filepath.Base(f.Path)] = f.Content
			}
			for _, name := range []string{"config.yml", "gitlab.yml"} {
				golden := filepath.Join(dir, name+".golden")
				got, ok := rendered[name]
				if *update {
					if ok {
						writeGolden(t, golden, got)
					} else {
						os.Remove(golden)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				switch {
				case !ok && os.IsNotExist(err):
					continue // this node does not render it
				case !ok:
					t.Errorf("%s not rendered but %s exists", name, golden)
				case err != nil:
					t.Fatalf("%v (run go test ./pkg/reconfigure -update)", err)
				case string(got) != string(want):
					t.Errorf("%s differs from %s:\n%s", name, golden, unifiedDiff(name, string(want), string(got), false))
				}
			}
		})
	}
}

func writeGolden(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// distConfig is the part of Distribution's config.yml the tests check.
type distConfig struct {
	Version string `yaml:"version"`
	Log     struct {
		Level     string            `yaml:"level"`
		Formatter string            `yaml:"formatter"`
		Fields    map[string]string `yaml:"fields"`
	} `yaml:"log"`
	Storage map[string]map[string]any `yaml:"storage"`
	HTTP    struct {
		Addr         string              `yaml:"addr"`
		Secret       string              `yaml:"secret"`
		RelativeURLs bool                `yaml:"relativeurls"`
		Headers      map[string][]string `yaml:"headers"`
		Debug        struct {
			Addr       string `yaml:"addr"`
			Prometheus struct {
				Enabled bool   `yaml:"enabled"`
				Path    string `yaml:"path"`
			} `yaml:"prometheus"`
		} `yaml:"debug"`
	} `yaml:"http"`
	Health struct {
		StorageDriver struct {
			Enabled   bool   `yaml:"enabled"`
			Interval  string `yaml:"interval"`
			Threshold int    `yaml:"threshold"`
		} `yaml:"storagedriver"`
	} `yaml:"health"`
	Auth struct {
		Token struct {
			Realm          string `yaml:"realm"`
			Service        string `yaml:"service"`
			Issuer         string `yaml:"issuer"`
			RootCertBundle string `yaml:"rootcertbundle"`
			AutoRedirect   *bool  `yaml:"autoredirect"`
		} `yaml:"token"`
	} `yaml:"auth"`
	Validation struct {
		Disabled bool `yaml:"disabled"`
	} `yaml:"validation"`
	Compatibility *struct {
		Schema1 struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"schema1"`
	} `yaml:"compatibility"`
	Notifications struct {
		Endpoints []struct {
			Name              string              `yaml:"name"`
			URL               string              `yaml:"url"`
			Disabled          bool                `yaml:"disabled"`
			Timeout           string              `yaml:"timeout"`
			Threshold         int                 `yaml:"threshold"`
			MaxRetries        int                 `yaml:"maxretries"`
			Backoff           string              `yaml:"backoff"`
			Headers           map[string][]string `yaml:"headers"`
			IgnoredMediaTypes []string            `yaml:"ignoredmediatypes"`
			Ignore            struct {
				Actions []string `yaml:"actions"`
			} `yaml:"ignore"`
		} `yaml:"endpoints"`
	} `yaml:"notifications"`
}

type gitlabConfig struct {
	Production struct {
		Gitlab struct {
			DefaultProjectsFeatures struct {
				ContainerRegistry bool `yaml:"container_registry"`
			} `yaml:"default_projects_features"`
		} `yaml:"gitlab"`
		Registry struct {
			Enabled            bool   `yaml:"enabled"`
			Host               string `yaml:"host"`
			Port               *int   `yaml:"port"`
			APIURL             string `yaml:"api_url"`
			Key                string `yaml:"key"`
			Path               string `yaml:"path"`
			Issuer             string `yaml:"issuer"`
			NotificationSecret string `yaml:"notification_secret"`
		} `yaml:"registry"`
	} `yaml:"production"`
}

func renderParsed(t *testing.T, scenario string) (distConfig, gitlabConfig, bool) {
	t.Helper()
	l := loadScenario(t, filepath.Join(repoTestdata(t), "scenarios", scenario))
	files, _, err := Render(l, effectiveFixed(l))
	if err != nil {
		t.Fatal(err)
	}
	var dc distConfig
	var gc gitlabConfig
	hasConfig := false
	for _, f := range files {
		switch filepath.Base(f.Path) {
		case "config.yml":
			hasConfig = true
			if err := yaml.UnmarshalWithOptions(f.Content, &dc, yaml.Strict()); err != nil {
				t.Fatalf("config.yml does not parse back: %v\n%s", err, f.Content)
			}
		case "gitlab.yml":
			if err := yaml.UnmarshalWithOptions(f.Content, &gc, yaml.Strict()); err != nil {
				t.Fatalf("gitlab.yml does not parse back: %v\n%s", err, f.Content)
			}
		}
	}
	return dc, gc, hasConfig
}

// TestRenderedFields parses the rendered files back with a YAML parser
// and checks them field by field against what omnibus renders.
func TestRenderedFields(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		dc, gc, _ := renderParsed(t, "defaults")
		eq(t, "version", dc.Version, "0.1")
		eq(t, "log.level", dc.Log.Level, "info")
		eq(t, "log.formatter", dc.Log.Formatter, "text")
		eq(t, "log.fields.service", dc.Log.Fields["service"], "registry")
		eq(t, "storage.filesystem.rootdirectory", dc.Storage["filesystem"]["rootdirectory"], "/var/opt/regctl/gitlab-rails/shared/registry")
		eq(t, "storage.cache.blobdescriptor", dc.Storage["cache"]["blobdescriptor"], "inmemory")
		eq(t, "storage.delete.enabled", dc.Storage["delete"]["enabled"], true)
		eq(t, "http.addr", dc.HTTP.Addr, "127.0.0.1:5000")
		eq(t, "http.secret", dc.HTTP.Secret, fixedSecrets.HTTPSecret)
		eq(t, "http.relativeurls", dc.HTTP.RelativeURLs, false)
		eq(t, "http.headers", len(dc.HTTP.Headers["X-Content-Type-Options"]), 1)
		eq(t, "http.headers nosniff", dc.HTTP.Headers["X-Content-Type-Options"][0], "nosniff")
		eq(t, "http.debug.addr", dc.HTTP.Debug.Addr, "")
		eq(t, "health.storagedriver.enabled", dc.Health.StorageDriver.Enabled, true)
		eq(t, "health.storagedriver.interval", dc.Health.StorageDriver.Interval, "10s")
		eq(t, "health.storagedriver.threshold", dc.Health.StorageDriver.Threshold, 3)
		eq(t, "auth.token.realm", dc.Auth.Token.Realm, "http://localhost/jwt/auth")
		eq(t, "auth.token.service", dc.Auth.Token.Service, "container_registry")
		eq(t, "auth.token.issuer", dc.Auth.Token.Issuer, "omnibus-gitlab-issuer")
		eq(t, "auth.token.rootcertbundle", dc.Auth.Token.RootCertBundle, "/var/opt/regctl/registry/gitlab-registry.crt")
		eq(t, "auth.token.autoredirect set", dc.Auth.Token.AutoRedirect != nil && !*dc.Auth.Token.AutoRedirect, true)
		eq(t, "validation.disabled", dc.Validation.Disabled, true)
		eq(t, "compatibility absent", dc.Compatibility == nil, true)
		eq(t, "notifications", len(dc.Notifications.Endpoints), 0)

		r := gc.Production.Registry
		eq(t, "gitlab default_projects_features", gc.Production.Gitlab.DefaultProjectsFeatures.ContainerRegistry, true)
		eq(t, "registry.enabled", r.Enabled, true)
		eq(t, "registry.host", r.Host, "localhost")
		eq(t, "registry.port", r.Port != nil && *r.Port == 5050, true)
		eq(t, "registry.api_url", r.APIURL, "http://127.0.0.1:5000")
		eq(t, "registry.key", r.Key, "/var/opt/regctl/gitlab-rails/etc/gitlab-registry.key")
		eq(t, "registry.path", r.Path, "/var/opt/regctl/gitlab-rails/shared/registry")
		eq(t, "registry.issuer", r.Issuer, "omnibus-gitlab-issuer")
	})
	t.Run("own-domain omits port 443", func(t *testing.T) {
		_, gc, _ := renderParsed(t, "own-domain")
		eq(t, "registry.host", gc.Production.Registry.Host, "registry.gitlab.example.com")
		eq(t, "registry.port", gc.Production.Registry.Port == nil, true)
		eq(t, "registry.key", gc.Production.Registry.Key, "/srv/regctl/gitlab-rails/etc/gitlab-registry.key")
	})
	t.Run("gitlab domain port 5050", func(t *testing.T) {
		dc, gc, _ := renderParsed(t, "gitlab-domain-5050")
		eq(t, "realm", dc.Auth.Token.Realm, "https://gitlab.example.com/jwt/auth")
		eq(t, "registry.host", gc.Production.Registry.Host, "gitlab.example.com")
		eq(t, "registry.port", gc.Production.Registry.Port != nil && *gc.Production.Registry.Port == 5050, true)
	})
	t.Run("s3 with every option", func(t *testing.T) {
		dc, gc, _ := renderParsed(t, "s3-all-options")
		s3 := dc.Storage["s3"]
		for k, want := range map[string]any{
			"accesskey": "s3-access-key", "secretkey": "s3-secret-key-for-access-key",
			"bucket": "your-s3-bucket", "region": "your-s3-region", "regionendpoint": "https://s3.example.com",
			"pathstyle": true, "forcepathstyle": true, "encrypt": true,
			"chunksize": uint64(25000000), "maxrequestspersecond": uint64(100),
		} {
			eq(t, "storage.s3."+k, s3[k], want)
		}
		eq(t, "storage.redirect.disable", dc.Storage["redirect"]["disable"], true)
		_, hasFS := dc.Storage["filesystem"]
		eq(t, "no filesystem driver", hasFS, false)
		eq(t, "gitlab registry.path empty for s3", gc.Production.Registry.Path, "")
	})
	t.Run("read-only", func(t *testing.T) {
		dc, gc, _ := renderParsed(t, "read-only")
		ro := dc.Storage["maintenance"]["readonly"].(map[string]any)
		eq(t, "storage.maintenance.readonly.enabled", ro["enabled"], true)
		eq(t, "rootdirectory", dc.Storage["filesystem"]["rootdirectory"], "/mnt/registry")
		eq(t, "gitlab registry.path follows rootdirectory", gc.Production.Registry.Path, "/mnt/registry")
	})
	t.Run("notifications", func(t *testing.T) {
		dc, _, _ := renderParsed(t, "notifications")
		eps := dc.Notifications.Endpoints
		if len(eps) != 3 {
			t.Fatalf("want 3 endpoints, got %d", len(eps))
		}
		eq(t, "ep0.name", eps[0].Name, "test_endpoint")
		eq(t, "ep0.timeout", eps[0].Timeout, "500ms")
		eq(t, "ep0.threshold", eps[0].Threshold, 5)
		eq(t, "ep0.header", eps[0].Headers["Authorization"][0], "AUTHORIZATION_EXAMPLE_TOKEN")
		eq(t, "ep1.maxretries", eps[1].MaxRetries, 10)
		eq(t, "ep1.threshold follows maxretries", eps[1].Threshold, 10)
		eq(t, "ep1.timeout default", eps[1].Timeout, "500ms")
		eq(t, "ep1.backoff", eps[1].Backoff, "5s")
		eq(t, "ep1.ignoredmediatypes", eps[1].IgnoredMediaTypes[0], "application/octet-stream")
		eq(t, "ep1.ignore.actions", eps[1].Ignore.Actions[0], "pull")
		eq(t, "ep2.disabled", eps[2].Disabled, true)
		eq(t, "ep2.backoff default", eps[2].Backoff, "1s")
		eq(t, "ep2.maxretries default", eps[2].MaxRetries, 5)
	})
	t.Run("external registry", func(t *testing.T) {
		dc, gc, _ := renderParsed(t, "external-registry")
		r := gc.Production.Registry
		eq(t, "api_url", r.APIURL, "https://external-registry.example.com:5000")
		eq(t, "key", r.Key, "/custom/path/to/registry-key.key")
		eq(t, "issuer", r.Issuer, "gitlab-issuer")
		eq(t, "host", r.Host, "registry.gitlab.example.com")
		eq(t, "port", r.Port != nil && *r.Port == 5005, true)
		eq(t, "registry issuer agrees", dc.Auth.Token.Issuer, "gitlab-issuer")
	})
	t.Run("separate nodes", func(t *testing.T) {
		dc, _, hasConfig := renderParsed(t, "separate-nodes-registry")
		eq(t, "registry node has config.yml", hasConfig, true)
		eq(t, "http.addr", dc.HTTP.Addr, "0.0.0.0:5000")
		eq(t, "realm from token_realm", dc.Auth.Token.Realm, "https://gitlab.example.com/jwt/auth")
		eq(t, "http.secret from settings", dc.HTTP.Secret, "a-random-string-shared-by-every-registry-node")
		eq(t, "health off", dc.Health.StorageDriver.Enabled, false)
		eq(t, "rootcertbundle", dc.Auth.Token.RootCertBundle, "/etc/regctl/gitlab-registry.crt")
		_, gc, hasConfig := renderParsed(t, "separate-nodes-gitlab")
		eq(t, "gitlab node renders no config.yml", hasConfig, false)
		eq(t, "api_url", gc.Production.Registry.APIURL, "http://registry.internal:5000")
		eq(t, "key", gc.Production.Registry.Key, "/etc/regctl/gitlab-registry.key")
	})
	t.Run("debug and compatibility", func(t *testing.T) {
		dc, _, _ := renderParsed(t, "debug-and-compat")
		eq(t, "debug.addr", dc.HTTP.Debug.Addr, "localhost:5001")
		eq(t, "prometheus", dc.HTTP.Debug.Prometheus.Enabled, true)
		eq(t, "prometheus path", dc.HTTP.Debug.Prometheus.Path, "/metrics")
		eq(t, "schema1", dc.Compatibility != nil && dc.Compatibility.Schema1.Enabled, true)
		eq(t, "relativeurls", dc.HTTP.RelativeURLs, true)
		eq(t, "validation", dc.Validation.Disabled, false)
		eq(t, "log.level", dc.Log.Level, "debug")
		eq(t, "log.formatter", dc.Log.Formatter, "json")
	})
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v (%T), want %v", what, got, got, want)
	}
}

// TestRenderQuotesHostileValues makes sure no settings value can change
// the structure of the YAML it lands in.
func TestRenderQuotesHostileValues(t *testing.T) {
	src := `[gitlab_rails]
registry_issuer = "a: b\n  - c #d"
`
	l, err := settings.Parse(scenarioSettingsPath, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	l.Settings.ExternalURL = "https://gitlab.example.com/x\"\nauth: {}\n#"
	dc, _ := renderAndParse(t, l)
	eq(t, "issuer", dc.Auth.Token.Issuer, "a: b\n  - c #d")
	eq(t, "realm", dc.Auth.Token.Realm, "https://gitlab.example.com/x\"\nauth: {}\n#/jwt/auth")
}

func renderAndParse(t *testing.T, l *settings.Loaded) (distConfig, gitlabConfig) {
	t.Helper()
	files, _, err := Render(l, effectiveFixed(l))
	if err != nil {
		t.Fatal(err)
	}
	var dc distConfig
	var gc gitlabConfig
	for _, f := range files {
		var err error
		switch filepath.Base(f.Path) {
		case "config.yml":
			err = yaml.UnmarshalWithOptions(f.Content, &dc, yaml.Strict())
		case "gitlab.yml":
			err = yaml.UnmarshalWithOptions(f.Content, &gc, yaml.Strict())
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", f.Path, err, f.Content)
		}
	}
	return dc, gc
}

// effectiveFixed is fixedSecrets with settings values winning, as Run does.
func effectiveFixed(l *settings.Loaded) RegistrySecrets {
	sec := &Secrets{Registry: fixedSecrets}
	return sec.Effective(&l.Settings.Registry)
}

// TestNotificationSecretBecomesAuthorization: GitLab checks the secret in
// the Authorization header of the events it receives; an endpoint's own
// Authorization header wins.
func TestNotificationSecretBecomesAuthorization(t *testing.T) {
	src := `[registry]
notification_secret = "s3cret-for-gitlab"
[[registry.notifications]]
name = "gitlab"
url = "https://gitlab.example.com/api/v4/container_registry_event/events"
[[registry.notifications]]
name = "other"
url = "https://hooks.example.com/registry"
headers = { authorization = ["Bearer own-token"], X-Team = ["a"] }
`
	l, err := settings.Parse(scenarioSettingsPath, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	dc, gc := renderAndParse(t, l)
	eps := dc.Notifications.Endpoints
	if len(eps) != 2 {
		t.Fatalf("endpoints = %+v", eps)
	}
	eq(t, "gitlab Authorization", fmt.Sprint(eps[0].Headers["Authorization"]), "[s3cret-for-gitlab]")
	eq(t, "other Authorization", fmt.Sprint(eps[1].Headers["authorization"]), "[Bearer own-token]")
	eq(t, "other has no second Authorization", len(eps[1].Headers["Authorization"]), 0)
	eq(t, "other X-Team", fmt.Sprint(eps[1].Headers["X-Team"]), "[a]")
	eq(t, "gitlab.yml secret", gc.Production.Registry.NotificationSecret, "s3cret-for-gitlab")
}
