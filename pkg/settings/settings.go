// Package settings owns regctl.toml: its model and defaults, loading
// with the line of every key, validation with file/key/line, the paths it
// resolves to, and the in-place edits of the file (the read-only toggle,
// the storage switch of a cutover). It renders nothing: pkg/reconfigure
// turns the settings into files.
package settings

import (
	"fmt"
	"strconv"
)

// Settings is regctl.toml. Keys mirror omnibus gitlab.rb names so that an
// omnibus admin can translate a gitlab.rb line by line:
// registry['registry_http_addr'] becomes [registry] registry_http_addr.
type Settings struct {
	ExternalURL         string      `toml:"external_url"`
	RegistryExternalURL string      `toml:"registry_external_url"`
	DataDir             string      `toml:"data_dir"`
	Registry            Registry    `toml:"registry"`
	GitlabRails         GitlabRails `toml:"gitlab_rails"`
	Migration           Migration   `toml:"migration"`
}

// Registry is the [registry] table: omnibus' registry['...'] keys.
type Registry struct {
	Enable                      bool   `toml:"enable"`
	RegistryHTTPAddr            string `toml:"registry_http_addr"`
	DebugAddr                   string `toml:"debug_addr"`
	LogLevel                    string `toml:"log_level"`
	LogFormatter                string `toml:"log_formatter"`
	TokenRealm                  string `toml:"token_realm"`
	HealthStoragedriverEnabled  bool   `toml:"health_storagedriver_enabled"`
	CompatibilitySchema1Enabled bool   `toml:"compatibility_schema1_enabled"`
	RelativeURLs                bool   `toml:"relative_urls"`
	ValidationEnabled           bool   `toml:"validation_enabled"`
	// RootCertBundle is where the token-signing certificate is written and
	// what config.yml's auth.token.rootcertbundle names.
	RootCertBundle string `toml:"rootcertbundle"`
	// Secrets: when set here they win over regctl-secrets.json. The
	// certificate holds only the public key: not secret.
	HTTPSecret          string `toml:"http_secret" secret:"true"`
	InternalKey         string `toml:"internal_key" secret:"true"`
	InternalCertificate string `toml:"internal_certificate"`
	NotificationSecret  string `toml:"notification_secret" secret:"true"`
	// The endpoints' queues on disk (regctl's own notifications.queue in
	// config.yml): their folder, relative to this file's, and how many
	// events each holds. Rendered only when set.
	NotificationsQueueDirectory string `toml:"notifications_queue_directory"`
	NotificationsQueueMaxEvents int    `toml:"notifications_queue_maxevents"`
	// Storage is Distribution's storage section, passed through as written
	// (after validation against storageSchema) with omnibus' defaults added.
	Storage         map[string]any  `toml:"storage"`
	Notifications   []Notification  `toml:"notifications"`
	CleanupPolicies []CleanupPolicy `toml:"cleanup_policies"`
	// Cluster and Redis: several nodes on one storage (cluster.go).
	Cluster Cluster        `toml:"cluster"`
	Redis   map[string]any `toml:"redis"`
	// Referrers: how the referrers API meets CNCF Distribution on the
	// same storage.
	Referrers Referrers `toml:"referrers"`
}

// Referrers is [registry.referrers].
type Referrers struct {
	// FallbackTags also keeps the referrers tag schema's index (the tag
	// sha256-<hex> of each subject) up to date on every referrer push and
	// delete, so that CNCF Distribution on the same storage, and its
	// clients, see the signatures and SBOMs pushed through regctl.
	FallbackTags bool `toml:"fallback_tags"`
}

// Notification is one [[registry.notifications]] endpoint. Every header
// value is secret: headers carry credentials (Authorization, X-Api-Key).
type Notification struct {
	Name              string              `toml:"name"`
	URL               string              `toml:"url"`
	Disabled          bool                `toml:"disabled"`
	Timeout           string              `toml:"timeout"`
	Threshold         int                 `toml:"threshold"`
	MaxRetries        int                 `toml:"maxretries"`
	Backoff           string              `toml:"backoff"`
	Headers           map[string][]string `toml:"headers" secret:"true"`
	IgnoredMediaTypes []string            `toml:"ignoredmediatypes"`
	Ignore            NotificationIgnore  `toml:"ignore"`
}

// NotificationIgnore filters events out of one endpoint.
type NotificationIgnore struct {
	MediaTypes []string `toml:"mediatypes"`
	Actions    []string `toml:"actions"`
}

// CleanupPolicy is one [[registry.cleanup_policies]] entry (GitLab's
// ContainerExpirationPolicy). Its values are checked here (regexes,
// globs, age); the policy engine lives in pkg/cleanup.
type CleanupPolicy struct {
	Name          string   `toml:"name"`
	Repositories  []string `toml:"repositories"`
	Enabled       bool     `toml:"enabled"`
	KeepN         int      `toml:"keep_n"`
	NameRegex     string   `toml:"name_regex"`
	NameRegexKeep string   `toml:"name_regex_keep"`
	OlderThan     string   `toml:"older_than"`
}

// GitlabRails is the [gitlab_rails] table: what GitLab's gitlab.yml gets.
type GitlabRails struct {
	RegistryEnabled                          bool   `toml:"registry_enabled"`
	RegistryHost                             string `toml:"registry_host"`
	RegistryPort                             Port   `toml:"registry_port"`
	RegistryAPIURL                           string `toml:"registry_api_url"`
	RegistryKeyPath                          string `toml:"registry_key_path"`
	RegistryPath                             string `toml:"registry_path"`
	RegistryIssuer                           string `toml:"registry_issuer"`
	DefaultProjectsFeaturesContainerRegistry bool   `toml:"gitlab_default_projects_features_container_registry"`
}

// Migration is the [migration] table: the target of migrate-storage.
type Migration struct {
	S3 map[string]any `toml:"s3"`
}

// Defaults returns the settings an empty regctl.toml means.
func Defaults() Settings {
	return Settings{
		ExternalURL: "http://localhost",
		DataDir:     "/var/opt/regctl",
		Registry: Registry{
			Enable:                     true,
			RegistryHTTPAddr:           "127.0.0.1:5000",
			LogLevel:                   "info",
			LogFormatter:               "text",
			HealthStoragedriverEnabled: true,
			Cluster:                    Cluster{Enabled: true, Heartbeat: "2s"},
		},
		GitlabRails: GitlabRails{
			RegistryEnabled:                          true,
			RegistryIssuer:                           "omnibus-gitlab-issuer",
			DefaultProjectsFeaturesContainerRegistry: true,
		},
	}
}

// Port is a port number written either as 5050 or, as in gitlab.rb, "5050".
// It is kept as written; validation checks it is a number from 1 to 65535,
// and RegistryHostPort turns it into that number, so "05050" renders as
// 5050 (YAML 1.1 would read a plain 05050 as octal).
type Port string

// UnmarshalTOML accepts an integer or a string.
func (p *Port) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		*p = Port(strconv.FormatInt(x, 10))
	case string:
		*p = Port(x)
	default:
		return fmt.Errorf("must be a port number, not %T", v)
	}
	return nil
}
