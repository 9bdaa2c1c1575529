// Package distconfig reads a registry config.yml in CNCF Distribution's
// format: the one `regctl reconfigure` renders, or one written by an
// omnibus GitLab install (/var/opt/gitlab/registry/config.yml). It is what
// `regctl serve`, `regctl registry-garbage-collect` and `regctl
// migrate-storage` start from.
//
// Reading follows Distribution where a config that runs there should run
// here too, and is stricter where Distribution silently does something
// surprising:
//
//   - Keys regctl does not use (anywhere, whole sections such as
//     `reporting` or `middleware` included) are logged once each, with
//     their full key path and file:line, and otherwise ignored, as
//     Distribution ignores them.
//   - An invalid value stops with a one-line *Error naming the key path and
//     file:line: `config.yml:14: storage.delete.enabled: must be true or
//     false, not "yes"`.
//   - YAML is read as YAML 1.2 (goccy/go-yaml), so `yes`/`on` are strings,
//     not booleans. Booleans are true/false, or the strings "true"/"false"
//     omnibus sometimes writes.
//   - Durations are Go duration strings ("10s", "500ms") or plain integers
//     counted in nanoseconds, as in Distribution.
//   - A relative storage.filesystem.rootdirectory is used as-is, so it
//     resolves against the process's working directory, as in
//     Distribution (not against the config file's folder); a warning says
//     so since under a service manager that folder is usually "/".
//   - REGISTRY_* environment variables override single keys; see env.go.
package distconfig

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// DefaultDrainTimeout is http.draintimeout when the file does not set it.
// Distribution's default, 0, drops open connections at SIGTERM, which cuts
// pushes and pulls in flight on every restart; regctl waits this long for
// them instead. An explicit `draintimeout: 0` keeps Distribution's
// behaviour.
const DefaultDrainTimeout = 30 * time.Second

// Config is a parsed config.yml. Only what regctl acts on is typed; the
// auth and redis sections are kept as plain values for the packages that
// own them.
type Config struct {
	Version string // always "0.1"
	Log     Log
	Storage Storage
	HTTP    HTTP
	Health  Health
	// Auth holds at most one scheme, "token" {realm, service, issuer,
	// rootcertbundle: string; autoredirect: bool} or "htpasswd" {realm,
	// path: string}, with only those keys, type-checked. Nil: no auth.
	Auth          map[string]any
	Notifications Notifications
	// Redis is Distribution v3's redis section, typed (redis.go). Nil
	// when absent.
	Redis *Redis
	// Cluster is regctl.cluster (regctl.go), a section of regctl's own
	// that Distribution ignores.
	Cluster Cluster
	// Referrers is regctl.referrers (regctl.go), regctl's own too.
	Referrers     Referrers
	Validation    Validation
	Compatibility Compatibility
}

// Log is the log section.
type Log struct {
	// Level is error, warn, info (default) or debug: the four levels
	// Distribution's config accepts. panic/fatal/trace are rejected as
	// Distribution rejects them, so a config never means something
	// different to the two programs.
	Level string
	// Formatter is text (default), json, logstash (Distribution's), or
	// logfmt (regctl's).
	Formatter string
	Fields    map[string]string
}

// SlogLevel maps Level to a slog level.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "error":
		return slog.LevelError
	case "warn":
		return slog.LevelWarn
	case "debug":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Storage is the storage section.
type Storage struct {
	// Driver is the one driver section present: filesystem, s3, inmemory,
	// or azure, gcs, swift, oss (accepted here; regctl serve may not run
	// them).
	Driver string
	// Params are that driver's parameters. For filesystem and s3 only known
	// parameters are kept (others are warned about and dropped), and each
	// has its Go type: string, bool or int. Other drivers' parameters are
	// kept as written. Never nil.
	Params           map[string]any
	DeleteEnabled    bool // storage.delete.enabled, default false
	RedirectDisabled bool // storage.redirect.disable
	Cache            Cache
	ReadOnly         bool // storage.maintenance.readonly.enabled
	UploadPurging    UploadPurging
	// TagConcurrencyLimit is storage.tag.concurrencylimit; 0 leaves the
	// choice to the daemon.
	TagConcurrencyLimit int
}

// Cache is storage.cache.
type Cache struct {
	BlobDescriptor     string // "", "inmemory" or "redis"
	BlobDescriptorSize int    // 0: the daemon's default
}

// UploadPurging is storage.maintenance.uploadpurging. Missing keys keep
// Distribution's defaults (where Distribution would panic on a partial
// section).
type UploadPurging struct {
	Enabled  bool
	Age      time.Duration
	Interval time.Duration
	DryRun   bool
}

// HTTP is the http section.
type HTTP struct {
	// Addr is host:port for tcp, a socket path for unix. Empty only when
	// the file has no http section at all (a config for garbage-collect,
	// say); serving needs it.
	Addr         string
	Net          string // "tcp" (default) or "unix"
	Secret       string
	RelativeURLs bool
	// Headers are added to every response; names are canonicalized.
	Headers map[string][]string
	TLS     TLS
	// DrainTimeout is how long shutdown waits for open requests:
	// DefaultDrainTimeout when unset, 0 to close at once as Distribution's
	// default does.
	DrainTimeout time.Duration
	Debug        Debug
}

// TLS is http.tls. Certificate and Key are both set or both empty.
type TLS struct {
	Certificate string
	Key         string
	ClientCAs   []string
	MinimumTLS  string // "", tls1.0, tls1.1, tls1.2 or tls1.3; "" means tls1.2
}

// Debug is http.debug, the separate debug/metrics listener.
type Debug struct {
	Addr       string
	Prometheus Prometheus
}

// Prometheus is http.debug.prometheus.
type Prometheus struct {
	Enabled bool
	Path    string // default /metrics
}

// Health is the health section.
type Health struct {
	StorageDriver StorageDriverCheck
}

// StorageDriverCheck is health.storagedriver.
type StorageDriverCheck struct {
	Enabled  bool
	Interval time.Duration // default (and when 0) 10s, as in Distribution
	// Threshold is the failures in a row before the check reports down;
	// 0 behaves as 1, as in Distribution.
	Threshold int
}

// Notifications is the notifications section.
type Notifications struct {
	Endpoints []Endpoint
	Queue     NotificationQueue
	// IncludeReferences (events.includereferences) puts a manifest's
	// references into its push and pull events. Distribution's default
	// is false; regctl's is true, as omnibus renders it.
	IncludeReferences bool
}

// NotificationQueue is notifications.queue, regctl's own section (CNCF
// Distribution keeps events in memory and has none).
type NotificationQueue struct {
	// Directory holds one queue folder per endpoint. "" lets the daemon
	// choose: a "notifications" folder beside config.yml.
	Directory string
	// MaxEvents bounds each endpoint's queue; 0 means
	// DefaultQueueMaxEvents.
	MaxEvents int
}

// DefaultQueueMaxEvents is how many undelivered events an endpoint's
// queue holds when notifications.queue.maxevents is not set.
const DefaultQueueMaxEvents = 100000

// Endpoint is one notifications.endpoints entry. Timeout, Threshold,
// MaxRetries and Backoff default to omnibus' values (500ms, 5, 5, 1s).
type Endpoint struct {
	Name              string
	URL               string
	Headers           map[string][]string
	Timeout           time.Duration
	Threshold         int
	MaxRetries        int
	Backoff           time.Duration
	IgnoredMediaTypes []string
	Ignore            Ignore
	Disabled          bool
}

// Ignore is an endpoint's ignore section.
type Ignore struct {
	MediaTypes []string
	Actions    []string
}

// Validation is the validation section.
type Validation struct {
	Disabled bool
}

// Compatibility is the compatibility section.
type Compatibility struct {
	Schema1 Schema1
}

// Schema1 is compatibility.schema1.
type Schema1 struct {
	Enabled bool
}

// Error is an invalid config: one problem, located by file and line, or by
// the environment variable that set the value.
type Error struct {
	File string
	Line int    // 0 when the problem has no line (a missing section)
	Env  string // the REGISTRY_* variable the value came from, if any
	Key  string // dotted key path; "" for YAML syntax errors
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Env != "":
		fmt.Fprintf(&b, "%s (environment)", e.Env)
	case e.Line > 0:
		fmt.Fprintf(&b, "%s:%d", e.File, e.Line)
	default:
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Default is the config regctl serves with when given none: version 0.1,
// 127.0.0.1:5000, filesystem storage at rootDir with deletes enabled, no
// auth, info logs as text. It has no blob descriptor cache, so nothing can
// go stale behind a garbage collection.
func Default(rootDir string) *Config {
	c := base()
	c.Storage.Driver = "filesystem"
	c.Storage.Params = map[string]any{"rootdirectory": rootDir}
	c.Storage.DeleteEnabled = true
	c.HTTP.Addr = "127.0.0.1:5000"
	return c
}

// base is a config with every default a parsed file starts from.
func base() *Config {
	return &Config{
		Version: "0.1",
		Log:     Log{Level: "info", Formatter: "text"},
		Storage: Storage{
			Params:        map[string]any{},
			UploadPurging: UploadPurging{Enabled: true, Age: 168 * time.Hour, Interval: 24 * time.Hour},
		},
		HTTP:          HTTP{Net: "tcp", DrainTimeout: DefaultDrainTimeout},
		Health:        Health{StorageDriver: StorageDriverCheck{Interval: 10 * time.Second}},
		Notifications: Notifications{IncludeReferences: true},
	}
}

// Load reads and parses the config file at path, then applies REGISTRY_*
// environment overrides.
func Load(path string, log *slog.Logger) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read registry config: %w", err)
	}
	return Parse(path, data, log)
}

// Parse parses data, read from path (used in messages only), then applies
// the REGISTRY_* environment overrides of this process. Warnings (unknown
// keys, ignored environment variables) go to log, which may be nil. The
// error, if any, is an *Error.
func Parse(path string, data []byte, log *slog.Logger) (*Config, error) {
	return parse(path, data, log, os.Environ())
}

func parse(path string, data []byte, log *slog.Logger, environ []string) (*Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, extra, serr := parseTree(data)
	if serr != nil {
		return nil, &Error{File: path, Line: serr.line, Msg: "invalid YAML: " + serr.msg}
	}
	if extra > 0 {
		log.Warn("registry config holds more than one YAML document; only the first is read", "file", path)
	}
	if root.kind == kindScalar || root.kind == kindSeq {
		return nil, &Error{File: path, Line: root.line, Msg: "must be a map of sections (version, storage, http, ...), not " + root.describe()}
	}
	d := &decoder{file: path, log: log}
	root = d.applyEnv(root, environ)
	cfg := base()
	d.root(root, cfg)
	if d.err != nil {
		return nil, d.err
	}
	return cfg, nil
}
