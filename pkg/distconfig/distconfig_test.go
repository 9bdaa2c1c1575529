package distconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// logged is one record the capture handler saw.
type logged struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// capture is a slog handler that keeps every record, so tests can assert
// exactly which warnings a config produces.
type capture struct {
	mu   sync.Mutex
	recs []logged
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }

func (c *capture) Handle(_ context.Context, r slog.Record) error {
	l := logged{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, l)
	return nil
}

// warnings renders the warnings as "key at" (or "env" for ignored
// environment variables), in order.
func (c *capture) warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.recs {
		if r.level < slog.LevelWarn {
			continue
		}
		switch {
		case r.attrs["key"] != "":
			s := r.attrs["key"] + " " + r.attrs["at"]
			if d := r.attrs["did_you_mean"]; d != "" {
				s += " (" + d + ")"
			}
			out = append(out, s)
		case r.attrs["env"] != "":
			out = append(out, "env "+r.attrs["env"])
		default:
			out = append(out, r.msg)
		}
	}
	return out
}

func newCapture() (*capture, *slog.Logger) {
	c := &capture{}
	return c, slog.New(c)
}

const (
	testSecret    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	regctlData    = "/var/opt/regctl"
	gitlabRealm   = "https://gitlab.example.com/jwt/auth"
	omnibusIssuer = "omnibus-gitlab-issuer"
)

// renderedDefaults is what the "defaults" scenario's config.yml means.
func renderedDefaults() *Config {
	c := base()
	c.Log.Fields = map[string]string{"service": "registry"}
	c.Storage.Driver = "filesystem"
	c.Storage.Params = map[string]any{"rootdirectory": regctlData + "/gitlab-rails/shared/registry"}
	c.Storage.DeleteEnabled = true
	c.Storage.Cache.BlobDescriptor = "inmemory"
	c.HTTP.Addr = "127.0.0.1:5000"
	c.HTTP.Secret = testSecret
	c.HTTP.Headers = map[string][]string{"X-Content-Type-Options": {"nosniff"}}
	c.Health.StorageDriver = StorageDriverCheck{Enabled: true, Interval: 10 * time.Second, Threshold: 3}
	c.Auth = map[string]any{"token": map[string]any{
		"realm":          "http://localhost/jwt/auth",
		"service":        "container_registry",
		"issuer":         omnibusIssuer,
		"rootcertbundle": regctlData + "/registry/gitlab-registry.crt",
		"autoredirect":   false,
	}}
	c.Validation.Disabled = true
	return c
}

func tokenAuth(c *Config) map[string]any { return c.Auth["token"].(map[string]any) }

// TestParseRenderedScenarios parses every config.yml reconfigure renders
// for the settings scenarios: each must parse without a single warning, and
// those listed here must mean exactly what the scenario asked for.
func TestParseRenderedScenarios(t *testing.T) {
	want := map[string]func(c *Config){
		"defaults": func(c *Config) {},
		"cluster-redis": func(c *Config) {
			tokenAuth(c)["realm"] = gitlabRealm
			c.Storage.Cache.BlobDescriptor = "redis"
			c.Redis = &Redis{Addrs: []string{"127.0.0.1:6379"}, DB: 2, Password: "redis-secret",
				DialTimeout: 250 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
				PoolSize: 32, MaxIdleConns: 8}
			c.Cluster.Heartbeat = time.Second
		},
		"debug-and-compat": func(c *Config) {
			c.Log.Level, c.Log.Formatter = "debug", "json"
			c.HTTP.RelativeURLs = true
			c.HTTP.Debug = Debug{Addr: "localhost:5001", Prometheus: Prometheus{Enabled: true, Path: "/metrics"}}
			tokenAuth(c)["realm"] = gitlabRealm
			c.Validation.Disabled = false
			c.Compatibility.Schema1.Enabled = true
		},
		"external-registry": func(c *Config) {
			tokenAuth(c)["realm"] = gitlabRealm
			tokenAuth(c)["issuer"] = "gitlab-issuer"
		},
		"gitlab-domain-5050": func(c *Config) { tokenAuth(c)["realm"] = gitlabRealm },
		"notifications": func(c *Config) {
			tokenAuth(c)["realm"] = gitlabRealm
			c.Notifications.Endpoints = []Endpoint{
				{Name: "test_endpoint", URL: "https://gitlab.example.com/notify", Timeout: 500 * time.Millisecond,
					Threshold: 5, MaxRetries: 5, Backoff: time.Second,
					Headers: map[string][]string{"Authorization": {"AUTHORIZATION_EXAMPLE_TOKEN"}}},
				{Name: "audit", URL: "http://audit.internal:8080/events", Timeout: 500 * time.Millisecond,
					Threshold: 10, MaxRetries: 10, Backoff: 5 * time.Second,
					IgnoredMediaTypes: []string{"application/octet-stream"}, Ignore: Ignore{Actions: []string{"pull"}}},
				{Name: "paused", URL: "https://hooks.example.com/registry", Disabled: true, Timeout: 500 * time.Millisecond,
					Threshold: 5, MaxRetries: 5, Backoff: time.Second},
			}
		},
		"own-domain": func(c *Config) {
			c.Storage.Params["rootdirectory"] = "/srv/regctl/gitlab-rails/shared/registry"
			tokenAuth(c)["realm"] = gitlabRealm
			tokenAuth(c)["rootcertbundle"] = "/srv/regctl/registry/gitlab-registry.crt"
		},
		"read-only": func(c *Config) {
			c.Storage.Params["rootdirectory"] = "/mnt/registry"
			c.Storage.ReadOnly = true
			tokenAuth(c)["realm"] = gitlabRealm
		},
		"referrers-fallback": func(c *Config) {
			tokenAuth(c)["realm"] = gitlabRealm
			c.Referrers.FallbackTags = true
		},
		"s3-all-options": func(c *Config) {
			c.Storage.Driver = "s3"
			c.Storage.RedirectDisabled = true
			c.Storage.Params = map[string]any{
				"accesskey": "s3-access-key", "secretkey": "s3-secret-key-for-access-key",
				"bucket": "your-s3-bucket", "region": "your-s3-region", "regionendpoint": "https://s3.example.com",
				"chunksize": 25000000, "maxrequestspersecond": 100,
				"encrypt": true, "forcepathstyle": true, "pathstyle": true,
			}
			tokenAuth(c)["realm"] = gitlabRealm
		},
		"separate-nodes-registry": func(c *Config) {
			c.HTTP.Addr = "0.0.0.0:5000"
			c.HTTP.Secret = "a-random-string-shared-by-every-registry-node"
			c.Health.StorageDriver.Enabled = false
			tokenAuth(c)["realm"] = gitlabRealm
			tokenAuth(c)["rootcertbundle"] = "/etc/regctl/gitlab-registry.crt"
		},
	}

	goldens, err := filepath.Glob(filepath.Join("..", "..", "testdata", "scenarios", "*", "config.yml.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if len(goldens) == 0 {
		t.Fatal("no testdata/scenarios/*/config.yml.golden found")
	}
	seen := map[string]bool{}
	for _, path := range goldens {
		name := filepath.Base(filepath.Dir(path))
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			logs, log := newCapture()
			got, err := parse(path, data, log, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if w := logs.warnings(); len(w) > 0 {
				t.Errorf("warnings on a rendered config: %q", w)
			}
			edit, ok := want[name]
			if !ok {
				// A scenario added since: parsing cleanly is all we know.
				t.Logf("no expected values for scenario %s", name)
				return
			}
			exp := renderedDefaults()
			edit(exp)
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("config mismatch\n got: %+v\nwant: %+v", got, exp)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("scenario %s has expectations but no config.yml.golden", name)
		}
	}
}

// TestParseOmnibusConfig reads a config as omnibus GitLab writes it, with
// sections and options regctl does not use: each is one warning naming its
// key and line, and the rest is read.
func TestParseOmnibusConfig(t *testing.T) {
	logs, log := newCapture()
	path := filepath.Join("testdata", "omnibus-config.yml")
	c, err := parse(path, mustRead(t, path), log, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantWarn := []string{
		"storage.s3.checksum_disabled " + path + ":21",
		"storage.s3.maxretries " + path + ":22",
		"reporting " + path + ":75",
		"profiling " + path + ":79",
		"middleware " + path + ":82",
		"database " + path + ":87",
	}
	if got := logs.warnings(); !reflect.DeepEqual(got, wantWarn) {
		t.Errorf("warnings\n got: %q\nwant: %q", got, wantWarn)
	}
	if c.Storage.Driver != "s3" {
		t.Fatalf("driver = %q, want s3", c.Storage.Driver)
	}
	wantParams := map[string]any{
		"accesskey": "AKIAEXAMPLE", "secretkey": "0123", "bucket": "gitlab-registry",
		"region": "us-east-1", "regionendpoint": "https://s3.example.com",
		"pathstyle": true, "chunksize": 10485760,
	}
	if !reflect.DeepEqual(c.Storage.Params, wantParams) {
		t.Errorf("params = %#v, want %#v", c.Storage.Params, wantParams)
	}
	if c.HTTP.DrainTimeout != time.Minute || c.HTTP.Debug.Addr != "localhost:5001" || !c.Storage.DeleteEnabled {
		t.Errorf("http/storage = %+v / %+v", c.HTTP, c.Storage)
	}
	if len(c.Notifications.Endpoints) != 1 {
		t.Fatalf("endpoints = %+v", c.Notifications.Endpoints)
	}
	ep := c.Notifications.Endpoints[0]
	if got := ep.Headers["Authorization"]; !reflect.DeepEqual(got, []string{"c2VjcmV0LXRva2Vu"}) {
		t.Errorf("Authorization header = %q", got)
	}
	if ep.MaxRetries != 5 || ep.Threshold != 5 || ep.Timeout != 500*time.Millisecond {
		t.Errorf("endpoint defaults = %+v", ep)
	}
	if c.Log.Fields["environment"] != "production" {
		t.Errorf("log fields = %v", c.Log.Fields)
	}
	if tokenAuth(c)["rootcertbundle"] != "/var/opt/gitlab/registry/gitlab-registry.crt" {
		t.Errorf("auth = %v", c.Auth)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// minimal is the smallest valid config, at known lines:
//
//	1 version  2 storage  3 filesystem  4 rootdirectory  5 http  6 addr
const minimal = `version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: 127.0.0.1:5000
`

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"version 0.2", strings.Replace(minimal, "0.1", "0.2", 1),
			`config.yml:1: version: must be 0.1, not "0.2"`},
		{"version 0.10", strings.Replace(minimal, "0.1", "0.10", 1),
			`config.yml:1: version: must be 0.1, not "0.10"`},
		{"version missing", strings.Replace(minimal, "version: 0.1\n", "", 1),
			`config.yml: version: is missing: the file must start with version: 0.1`},
		{"storage missing", "version: 0.1\nhttp:\n  addr: :5000\n",
			`config.yml: storage: is missing: name one storage driver (filesystem, s3, inmemory, azure, gcs, swift or oss)`},
		{"no driver", "version: 0.1\nstorage:\n  delete:\n    enabled: true\n",
			`config.yml:2: storage: names no storage driver: add one of filesystem, s3, inmemory, azure, gcs, swift or oss`},
		{"two drivers", minimal + "storage:\n", ""}, // placeholder replaced below
		{"driver section not a map", "version: 0.1\nstorage:\n  filesystem: /var/lib/registry\n",
			`config.yml:3: storage.filesystem: must be a map of driver parameters, not "/var/lib/registry"`},
		{"driver section a list", "version: 0.1\nstorage:\n  s3:\n    - bucket\n",
			`config.yml:3: storage.s3: must be a map of driver parameters, not a list`},
		{"bool yes", minimal + "  relativeurls: yes\n",
			`config.yml:7: http.relativeurls: must be true or false, not "yes"`},
		{"delete enabled yes", "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n  delete:\n    enabled: yes\n",
			`config.yml:6: storage.delete.enabled: must be true or false, not "yes"`},
		{"readonly enabled 1", "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    readonly:\n      enabled: 1\n",
			`config.yml:6: storage.maintenance.readonly.enabled: must be true or false, not "1"`},
		{"s3 bool param", "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    encrypt: \"on\"\n",
			`config.yml:5: storage.s3.encrypt: must be true or false, not "on"`},
		{"s3 int param", "version: 0.1\nstorage:\n  s3:\n    chunksize: 5MB\n",
			`config.yml:4: storage.s3.chunksize: must be a whole number, not "5MB"`},
		{"token autoredirect", minimal + "auth:\n  token:\n    realm: r\n    autoredirect: no\n",
			`config.yml:10: auth.token.autoredirect: must be true or false, not "no"`},
		{"duration words", "version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    uploadpurging:\n      age: 7 days\n",
			`config.yml:6: storage.maintenance.uploadpurging.age: must be a duration such as 10s or 500ms, not "7 days"`},
		{"duration quoted number", minimal + "  draintimeout: \"30\"\n",
			`config.yml:7: http.draintimeout: must be a duration such as 10s or 500ms, not "30"`},
		{"duration negative", minimal + "  draintimeout: -5s\n",
			`config.yml:7: http.draintimeout: must not be negative, not -5s`},
		{"duration a map", minimal + "health:\n  storagedriver:\n    interval: {s: 1}\n",
			`config.yml:9: health.storagedriver.interval: must be a duration such as 10s or 500ms, not a map`},
		{"purge interval zero", "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      interval: 0s\n",
			`config.yml:2: storage.maintenance.uploadpurging: age and interval must be more than 0 while upload purging is enabled`},
		{"log level trace", minimal + "log:\n  level: trace\n",
			`config.yml:8: log.level: must be error, warn, info or debug, not "trace"`},
		{"log level fatal", minimal + "log:\n  level: fatal\n",
			`config.yml:8: log.level: must be error, warn, info or debug, not "fatal"`},
		{"log formatter", minimal + "log:\n  formatter: xml\n",
			`config.yml:8: log.formatter: must be text, json, logfmt or logstash, not "xml"`},
		{"addr without port", strings.Replace(minimal, "127.0.0.1:5000", "127.0.0.1", 1),
			`config.yml:6: http.addr: must be host:port, such as 127.0.0.1:5000 or :5000, not "127.0.0.1"`},
		{"addr bad port", strings.Replace(minimal, "127.0.0.1:5000", "127.0.0.1:99999", 1),
			`config.yml:6: http.addr: port must be a number from 0 to 65535, not "99999"`},
		{"addr missing", "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  secret: s\n",
			`config.yml:4: http.addr: is missing: set host:port, such as 127.0.0.1:5000`},
		{"debug addr without port", minimal + "  debug:\n    addr: localhost\n",
			`config.yml:8: http.debug.addr: must be host:port, such as 127.0.0.1:5000 or :5000, not "localhost"`},
		{"net udp", minimal + "  net: udp\n",
			`config.yml:7: http.net: must be tcp or unix, not "udp"`},
		{"tls certificate only", minimal + "  tls:\n    certificate: /etc/r.crt\n",
			`config.yml:7: http.tls: certificate is set but key is not: set both, or neither to serve plain HTTP`},
		{"tls key only", minimal + "  tls:\n    key: /etc/r.key\n",
			`config.yml:7: http.tls: key is set but certificate is not: set both, or neither to serve plain HTTP`},
		{"tls version", minimal + "  tls:\n    minimumtls: ssl3\n",
			`config.yml:8: http.tls.minimumtls: must be tls1.0, tls1.1, tls1.2 or tls1.3, not "ssl3"`},
		{"two auth schemes", minimal + "auth:\n  htpasswd:\n    path: /p\n  token:\n    realm: r\n",
			`config.yml:10: auth: names two schemes, htpasswd and token: keep one`},
		{"cache type", "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: memcache\n",
			`config.yml:5: storage.cache.blobdescriptor: must be inmemory or redis, not "memcache"`},
		{"endpoint without url", minimal + "notifications:\n  endpoints:\n    - name: x\n",
			`config.yml:9: notifications.endpoints[0].url: must be an http:// or https:// URL, not ""`},
		{"endpoint threshold", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n      threshold: -1\n",
			`config.yml:11: notifications.endpoints[0].threshold: must not be negative, not -1`},
		{"endpoint without name", minimal + "notifications:\n  endpoints:\n    - url: http://h/\n",
			`config.yml:9: notifications.endpoints[0].name: is required: every endpoint needs a name`},
		{"endpoint names twice", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n    - name: x\n      url: http://i/\n",
			`config.yml:11: notifications.endpoints[1].name: "x" is also the name of endpoint 0`},
		{"endpoint ignores an unknown action", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n      ignore:\n        actions: [pull, fetch]\n",
			`config.yml:12: notifications.endpoints[0].ignore.actions[1]: must be push, pull, mount or delete, not "fetch"`},
		{"endpoint negative backoff", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n      backoff: -1s\n",
			`config.yml:11: notifications.endpoints[0].backoff: must not be negative, not -1s`},
		{"endpoint url credentials hidden", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: ftp://user:pw@h/\n",
			`config.yml:10: notifications.endpoints[0].url: must be an http:// or https:// URL, not "ftp://user:xxxxx@h/"`},
		{"queue maxevents", minimal + "notifications:\n  queue:\n    maxevents: -5\n",
			`config.yml:9: notifications.queue.maxevents: must not be negative, not -5`},
		{"headers not a map", minimal + "  headers: nosniff\n",
			`config.yml:7: http.headers: must be a map of header names to lists of values, not "nosniff"`},
		{"section not a map", minimal + "health: true\n",
			`config.yml:7: health: must be a map, not "true"`},
		{"file is a list", "- a\n- b\n",
			`config.yml:1: must be a map of sections (version, storage, http, ...), not a list`},
	}
	// Two drivers: the error points at the second.
	tests[5].yaml = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n  s3:\n    bucket: b\n"
	tests[5].want = `config.yml:5: storage: names two storage drivers, filesystem and s3: keep exactly one`

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, log := newCapture()
			_, err := parse("config.yml", []byte(tt.yaml), log, nil)
			if err == nil {
				t.Fatalf("Parse succeeded, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("error %T is not a *Error", err)
			}
			if w := logs.warnings(); len(w) > 0 {
				t.Errorf("warnings alongside the error: %q", w)
			}
		})
	}
}

// TestParseErrorsHideSecrets: an error names the key and line, never a
// credential: not a URL's password or query, nor a scalar found where
// driver parameters or notification headers belong.
func TestParseErrorsHideSecrets(t *testing.T) {
	endpoint := func(k, v string) string {
		return minimal + "notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n      " + k + ": " + v + "\n"
	}
	tests := []struct {
		name, yaml, where string
		secrets           []string
	}{
		{"url with password and query", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: ftp://user:PASSWORD1@h/?token=TOKEN1\n",
			"config.yml:10: notifications.endpoints[0].url: ", []string{"PASSWORD1", "TOKEN1"}},
		{"url that does not parse", minimal + "notifications:\n  endpoints:\n    - name: x\n      url: \"http://user:PASS WORD2@h/\"\n",
			"config.yml:10: notifications.endpoints[0].url: ", []string{"PASS WORD2", "WORD2"}},
		{"azure parameters as a string", "version: 0.1\nstorage:\n  azure: \"AccountKey=SECRET3\"\n",
			"config.yml:3: storage.azure: ", []string{"SECRET3"}},
		{"s3 parameters as a string", "version: 0.1\nstorage:\n  s3: SECRET4\n",
			"config.yml:3: storage.s3: ", []string{"SECRET4"}},
		{"notification headers as a string", endpoint("headers", "Bearer SECRET5"),
			"config.yml:11: notifications.endpoints[0].headers: ", []string{"SECRET5"}},
		{"redis as a URL", minimal + "redis: \"redis://:SECRET6@host:6379\"\n",
			"config.yml:7: redis: ", []string{"SECRET6"}},
		{"unquoted password read as an alias", minimal + "redis:\n  password: *SECRET7\n",
			"config.yml:8: invalid YAML: ", []string{"SECRET7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("config.yml", []byte(tt.yaml), nil, nil)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.where) {
				t.Errorf("error %q does not start with %q", err, tt.where)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows %q: %s", s, err)
				}
			}
		})
	}
}

// TestParseSyntaxErrors checks YAML errors come back as one line with the
// line number goccy found.
func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, yaml, prefix, contains string
	}{
		{"duplicate key", minimal + "version: 0.1\n", "config.yml:7: invalid YAML: ", `mapping key "version" already defined at [1:1]`},
		{"unclosed quote", "version: 0.1\nhttp:\n  addr: \"127.0.0.1:5000\n", "config.yml:3: invalid YAML: ", "quote"},
		{"bad indentation", "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n   bad: x\n", "config.yml:", "invalid YAML: "},
		{"tab indentation", "version: 0.1\nstorage:\n\tinmemory: {}\n", "config.yml:3: invalid YAML: ", ""},
		{"unknown alias", "version: 0.1\nstorage: *nothing\n", "config.yml:2: invalid YAML: ", "alias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("config.yml", []byte(tt.yaml), nil, nil)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.HasPrefix(msg, tt.prefix) || !strings.Contains(msg, tt.contains) {
				t.Errorf("error = %q, want prefix %q containing %q", msg, tt.prefix, tt.contains)
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Line == 0 {
				t.Errorf("error %#v carries no line", err)
			}
		})
	}
}

// TestParseAccepts covers the spellings Distribution accepts that the
// rendered configs do not use.
func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"version as string", strings.Replace(minimal, "0.1", `"0.1"`, 1), func(t *testing.T, c *Config) {
			if c.Version != "0.1" {
				t.Errorf("version = %q", c.Version)
			}
		}},
		{"booleans as strings", minimal + "  relativeurls: \"true\"\n", func(t *testing.T, c *Config) {
			if !c.HTTP.RelativeURLs {
				t.Error("relativeurls \"true\" read as false")
			}
		}},
		{"duration as nanoseconds", minimal + "  draintimeout: 5000000000\n", func(t *testing.T, c *Config) {
			if c.HTTP.DrainTimeout != 5*time.Second {
				t.Errorf("draintimeout = %v", c.HTTP.DrainTimeout)
			}
		}},
		{"s3 checksum kept", "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n    checksum: when_supported\n", func(t *testing.T, c *Config) {
			if c.Storage.Params["checksum"] != "when_supported" {
				t.Errorf("s3 params = %v, want checksum kept", c.Storage.Params)
			}
		}},
		{"draintimeout default", minimal, func(t *testing.T, c *Config) {
			if c.HTTP.DrainTimeout != DefaultDrainTimeout || c.HTTP.Net != "tcp" {
				t.Errorf("draintimeout, net = %v, %q", c.HTTP.DrainTimeout, c.HTTP.Net)
			}
		}},
		{"draintimeout zero kept", minimal + "  draintimeout: 0\n", func(t *testing.T, c *Config) {
			if c.HTTP.DrainTimeout != 0 {
				t.Errorf("draintimeout = %v, want 0", c.HTTP.DrainTimeout)
			}
		}},
		{"upload purging defaults", minimal, func(t *testing.T, c *Config) {
			want := UploadPurging{Enabled: true, Age: 168 * time.Hour, Interval: 24 * time.Hour}
			if c.Storage.UploadPurging != want || c.Storage.DeleteEnabled {
				t.Errorf("uploadpurging = %+v, delete %v", c.Storage.UploadPurging, c.Storage.DeleteEnabled)
			}
		}},
		{"upload purging partial", "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      dryrun: true\n      age: 1h\n",
			func(t *testing.T, c *Config) {
				want := UploadPurging{Enabled: true, Age: time.Hour, Interval: 24 * time.Hour, DryRun: true}
				if c.Storage.UploadPurging != want {
					t.Errorf("uploadpurging = %+v", c.Storage.UploadPurging)
				}
			}},
		{"upload purging off", "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      enabled: false\n      interval: 0\n",
			func(t *testing.T, c *Config) {
				if c.Storage.UploadPurging.Enabled {
					t.Error("upload purging still enabled")
				}
			}},
		{"storage short form", "version: 0.1\nstorage: inmemory\n", func(t *testing.T, c *Config) {
			if c.Storage.Driver != "inmemory" || len(c.Storage.Params) != 0 || c.Storage.Params == nil {
				t.Errorf("storage = %+v", c.Storage)
			}
		}},
		{"unix socket", "version: 0.1\nstorage: inmemory\nhttp:\n  net: unix\n  addr: /run/registry.sock\n", func(t *testing.T, c *Config) {
			if c.HTTP.Net != "unix" || c.HTTP.Addr != "/run/registry.sock" {
				t.Errorf("http = %+v", c.HTTP)
			}
		}},
		{"no http section", "version: 0.1\nstorage: inmemory\n", func(t *testing.T, c *Config) {
			if c.HTTP.Addr != "" {
				t.Errorf("addr = %q", c.HTTP.Addr)
			}
		}},
		{"anchors and merge keys", "version: 0.1\nx-common: &common\n  timeout: 2s\n  backoff: 3s\nstorage: inmemory\nnotifications:\n  endpoints:\n    - <<: *common\n      name: a\n      url: http://a/\n      backoff: 4s\n",
			func(t *testing.T, c *Config) {
				ep := c.Notifications.Endpoints[0]
				if ep.Timeout != 2*time.Second || ep.Backoff != 4*time.Second {
					t.Errorf("endpoint = %+v", ep)
				}
			}},
		{"threshold alone sets the retries", "version: 0.1\nstorage: inmemory\nnotifications:\n  endpoints:\n    - name: a\n      url: http://a/\n      threshold: 2\n    - name: b\n      url: http://b/\n      threshold: 2\n      maxretries: 7\n  queue:\n    directory: q\n    maxevents: 50\n",
			func(t *testing.T, c *Config) {
				a, b := c.Notifications.Endpoints[0], c.Notifications.Endpoints[1]
				if a.MaxRetries != 2 || b.MaxRetries != 7 {
					t.Errorf("maxretries = %d, %d; want 2, 7", a.MaxRetries, b.MaxRetries)
				}
				if q := c.Notifications.Queue; q.Directory != "q" || q.MaxEvents != 50 {
					t.Errorf("queue = %+v", q)
				}
				if !c.Notifications.IncludeReferences {
					t.Error("references are off without events.includereferences: regctl's default is on")
				}
			}},
		{"events without references", "version: 0.1\nstorage: inmemory\nnotifications:\n  events:\n    includereferences: false\n",
			func(t *testing.T, c *Config) {
				if c.Notifications.IncludeReferences {
					t.Error("events.includereferences: false is not read")
				}
			}},
		{"log level case and headers", minimal + "  headers:\n    x-frame-options: DENY\nlog:\n  level: DEBUG\n", func(t *testing.T, c *Config) {
			if c.Log.Level != "debug" || c.Log.SlogLevel() != slog.LevelDebug {
				t.Errorf("level = %q", c.Log.Level)
			}
			if got := c.HTTP.Headers["X-Frame-Options"]; !reflect.DeepEqual(got, []string{"DENY"}) {
				t.Errorf("headers = %v", c.HTTP.Headers)
			}
		}},
		{"tls pair", minimal + "  tls:\n    certificate: /c\n    key: /k\n    clientcas: [/ca1, /ca2]\n    minimumtls: tls1.3\n", func(t *testing.T, c *Config) {
			want := TLS{Certificate: "/c", Key: "/k", ClientCAs: []string{"/ca1", "/ca2"}, MinimumTLS: "tls1.3"}
			if !reflect.DeepEqual(c.HTTP.TLS, want) {
				t.Errorf("tls = %+v", c.HTTP.TLS)
			}
		}},
		{"htpasswd and redis", minimal + "auth:\n  htpasswd:\n    realm: basic\n    path: /etc/htpasswd\nredis:\n  addrs: [localhost:6379]\n  db: 1\n",
			func(t *testing.T, c *Config) {
				want := map[string]any{"htpasswd": map[string]any{"realm": "basic", "path": "/etc/htpasswd"}}
				if !reflect.DeepEqual(c.Auth, want) {
					t.Errorf("auth = %v", c.Auth)
				}
				if c.Redis == nil || !reflect.DeepEqual(*c.Redis, Redis{Addrs: []string{"localhost:6379"}, DB: 1}) {
					t.Errorf("redis = %#v", c.Redis)
				}
			}},
		{"other driver kept raw", "version: 0.1\nstorage:\n  gcs:\n    bucket: b\n    chunksize: 5\n", func(t *testing.T, c *Config) {
			if c.Storage.Driver != "gcs" || !reflect.DeepEqual(c.Storage.Params, map[string]any{"bucket": "b", "chunksize": 5}) {
				t.Errorf("storage = %+v", c.Storage)
			}
		}},
		{"comments only around", "# managed\n" + minimal + "# end\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, log := newCapture()
			c, err := parse("config.yml", []byte(tt.yaml), log, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// Only the anchor holder is unknown in these.
			for _, w := range logs.warnings() {
				if !strings.HasPrefix(w, "x-common ") {
					t.Errorf("unexpected warning %q", w)
				}
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestParseWarnings checks the unknown-key warnings: one per key, full
// path, file:line, a suggestion for a likely typo, and no descent into an
// unknown section.
func TestParseWarnings(t *testing.T) {
	yaml := minimal + `  tls:
    certificat: /c
  prefix: /registry
log:
  accesslog:
    disabled: true
auth:
  silly:
    realm: r
  token:
    realm: r
    jwks: /j
redis:
  addr: localhost:6379
`
	logs, log := newCapture()
	if _, err := parse("config.yml", []byte(yaml), log, nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		"http.tls.certificat config.yml:8 (certificate)",
		"http.prefix config.yml:9",
		"log.accesslog config.yml:11",
		"auth.silly config.yml:14",
		"auth.token.jwks config.yml:18",
		"redis.addr config.yml:20 (addrs)",
	}
	if got := logs.warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings\n got: %q\nwant: %q", got, want)
	}
}

func TestParseRelativeRootDirectoryWarns(t *testing.T) {
	logs, log := newCapture()
	c, err := parse("config.yml", []byte(strings.Replace(minimal, "/var/lib/registry", "data/registry", 1)), log, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// Used as written, as Distribution does.
	if c.Storage.Params["rootdirectory"] != "data/registry" {
		t.Errorf("rootdirectory = %v", c.Storage.Params["rootdirectory"])
	}
	if w := logs.warnings(); len(w) != 1 || !strings.Contains(w[0], "relative") {
		t.Errorf("warnings = %q, want one about the relative path", w)
	}
}

func TestParseEnvOverrides(t *testing.T) {
	env := []string{
		"PATH=/usr/bin",
		"REGISTRY_HTTP_ADDR=0.0.0.0:5005",
		"REGISTRY_HTTP_DRAINTIMEOUT=1m",
		"REGISTRY_LOG_LEVEL=debug",
		"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true",
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/registry",
		"REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS=50",
		"REGISTRY_AUTH_TOKEN_AUTOREDIRECT=true",
		"REGISTRY_HEALTH_STORAGEDRIVER_THRESHOLD=7",
		"REGISTRY_CONFIGURATION_PATH=/etc/registry/config.yml",
		"REGISTRY_PORT=tcp://10.0.0.1:5000",
	}
	logs, log := newCapture()
	c, err := parse("config.yml", []byte(minimal+"auth:\n  token:\n    realm: r\n"), log, env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.HTTP.Addr != "0.0.0.0:5005" || c.HTTP.DrainTimeout != time.Minute || c.Log.Level != "debug" ||
		!c.Storage.ReadOnly || c.Health.StorageDriver.Threshold != 7 {
		t.Errorf("overrides not applied: %+v", c)
	}
	if want := map[string]any{"rootdirectory": "/srv/registry", "maxthreads": 50}; !reflect.DeepEqual(c.Storage.Params, want) {
		t.Errorf("params = %#v", c.Storage.Params)
	}
	if want := map[string]any{"realm": "r", "autoredirect": true}; !reflect.DeepEqual(tokenAuth(c), want) {
		t.Errorf("token = %v", tokenAuth(c))
	}
	if got, want := logs.warnings(), []string{"env REGISTRY_PORT"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestParseEnvSelectsDriver(t *testing.T) {
	env := []string{
		"REGISTRY_STORAGE_S3_BUCKET=registry",
		"REGISTRY_STORAGE_S3_REGION=eu-west-1",
		"REGISTRY_STORAGE_S3_CHUNKSIZE=10485760",
		"REGISTRY_STORAGE=s3",
	}
	c, err := parse("config.yml", []byte(minimal), nil, env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := map[string]any{"bucket": "registry", "region": "eu-west-1", "chunksize": 10485760}
	if c.Storage.Driver != "s3" || !reflect.DeepEqual(c.Storage.Params, want) {
		t.Errorf("storage = %s %#v, want s3 %#v", c.Storage.Driver, c.Storage.Params, want)
	}
	// The file's own driver keeps its parameters.
	c, err = parse("config.yml", []byte(minimal), nil, []string{"REGISTRY_STORAGE=filesystem"})
	if err != nil || c.Storage.Params["rootdirectory"] != "/var/lib/registry" {
		t.Errorf("same driver: %v %+v", err, c)
	}
	// Settings with no file section at all.
	c, err = parse("config.yml", []byte("version: 0.1\nstorage: inmemory\n"), nil, []string{"REGISTRY_HTTP_ADDR=:5000"})
	if err != nil || c.HTTP.Addr != ":5000" {
		t.Errorf("new section: %v %+v", err, c)
	}
}

func TestParseEnvInvalid(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"REGISTRY_STORAGE_DELETE_ENABLED=yes",
			`REGISTRY_STORAGE_DELETE_ENABLED (environment): storage.delete.enabled: must be true or false, not "yes"`},
		{"REGISTRY_HTTP_ADDR=localhost",
			`REGISTRY_HTTP_ADDR (environment): http.addr: must be host:port, such as 127.0.0.1:5000 or :5000, not "localhost"`},
		{"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE=a week",
			`REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE (environment): storage.maintenance.uploadpurging.age: must be a duration such as 10s or 500ms, not "a week"`},
		{"REGISTRY_STORAGE=ceph",
			`REGISTRY_STORAGE (environment): storage: must name a storage driver (filesystem, s3, inmemory, azure, gcs, swift or oss), not "ceph"`},
		{"REGISTRY_STORAGE_S3_BUCKET=b",
			`REGISTRY_STORAGE_S3_BUCKET (environment): storage: names two storage drivers, filesystem and s3: keep exactly one`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := parse("config.yml", []byte(minimal), nil, []string{tt.env})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got: %v\nwant: %s", err, tt.want)
			}
		})
	}
}

// TestParseReadsProcessEnvironment checks Parse itself consults the
// process environment.
func TestParseReadsProcessEnvironment(t *testing.T) {
	t.Setenv("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "true")
	c, err := Parse("config.yml", []byte(minimal), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !c.Storage.ReadOnly {
		t.Error("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true not applied")
	}
}

func TestLoad(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(minimal+"  draintimeout: yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	if want := path + ":7: http.draintimeout:"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load error = %v, want prefix %s", err, want)
	}
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil || c.Storage.Driver != "filesystem" {
		t.Errorf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want ErrNotExist", err)
	}
}

func TestDefault(t *testing.T) {
	c := Default("/var/lib/regctl/registry")
	want := &Config{
		Version: "0.1",
		Log:     Log{Level: "info", Formatter: "text"},
		Storage: Storage{
			Driver:        "filesystem",
			Params:        map[string]any{"rootdirectory": "/var/lib/regctl/registry"},
			DeleteEnabled: true,
			UploadPurging: UploadPurging{Enabled: true, Age: 168 * time.Hour, Interval: 24 * time.Hour},
		},
		HTTP:          HTTP{Addr: "127.0.0.1:5000", Net: "tcp", DrainTimeout: DefaultDrainTimeout},
		Health:        Health{StorageDriver: StorageDriverCheck{Interval: 10 * time.Second}},
		Notifications: Notifications{IncludeReferences: true},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default\n got: %+v\nwant: %+v", c, want)
	}
	if c.Auth != nil {
		t.Errorf("Default has auth: %v", c.Auth)
	}
	// Default must say what the same settings say in a file.
	fromFile, err := parse("config.yml", []byte(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: /var/lib/regctl/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, c) {
		t.Errorf("Default differs from the equivalent file\nfile:    %+v\ndefault: %+v", fromFile, c)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		err  Error
		want string
	}{
		{Error{File: "c.yml", Line: 3, Key: "a.b", Msg: "bad"}, "c.yml:3: a.b: bad"},
		{Error{File: "c.yml", Key: "version", Msg: "is missing"}, "c.yml: version: is missing"},
		{Error{File: "c.yml", Line: 2, Msg: "invalid YAML: x"}, "c.yml:2: invalid YAML: x"},
		{Error{File: "c.yml", Env: "REGISTRY_X", Key: "x", Msg: "bad"}, "REGISTRY_X (environment): x: bad"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func ExampleParse() {
	c, err := Parse("config.yml", []byte("version: 0.1\nstorage:\n  delete:\n    enabled: yes\n  inmemory:\n"), nil)
	fmt.Println(c, err)
	// Output: <nil> config.yml:4: storage.delete.enabled: must be true or false, not "yes"
}
