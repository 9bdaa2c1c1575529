package settings

import (
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Paths are the files reconfigure owns, all absolute.
type Paths struct {
	DataDir      string
	Secrets      string // regctl-secrets.json beside the settings file
	ConfigYML    string // data_dir/registry/config.yml
	GitlabYML    string // data_dir/gitlab-rails/etc/gitlab.yml
	Certificate  string // registry.rootcertbundle
	Key          string // gitlab_rails.registry_key_path
	StorageRoot  string // filesystem rootdirectory; "" for other drivers
	RegistryPath string // gitlab.yml registry.path
	// NotifyQueue is notifications.queue.directory; "" when unset (the
	// daemon's default, beside config.yml).
	NotifyQueue  string
	SettingsDir  string
	SettingsFile string
	RegistryDir  string // data_dir/registry
	GitlabEtcDir string // data_dir/gitlab-rails/etc
}

// Resolve computes every path from the settings, resolving relative ones
// against the settings file's folder.
func (l *Loaded) Resolve() Paths {
	s := &l.Settings
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(l.Dir(), p)
	}
	p := Paths{SettingsDir: l.Dir(), SettingsFile: l.Path}
	p.DataDir = abs(s.DataDir)
	p.Secrets = filepath.Join(l.Dir(), "regctl-secrets.json")
	p.RegistryDir = filepath.Join(p.DataDir, "registry")
	p.GitlabEtcDir = filepath.Join(p.DataDir, "gitlab-rails", "etc")
	p.ConfigYML = filepath.Join(p.RegistryDir, "config.yml")
	p.GitlabYML = filepath.Join(p.GitlabEtcDir, "gitlab.yml")

	p.Certificate = filepath.Join(p.RegistryDir, "gitlab-registry.crt")
	if s.Registry.RootCertBundle != "" {
		p.Certificate = abs(s.Registry.RootCertBundle)
	}
	p.Key = filepath.Join(p.GitlabEtcDir, "gitlab-registry.key")
	if s.GitlabRails.RegistryKeyPath != "" {
		p.Key = abs(s.GitlabRails.RegistryKeyPath)
	}

	if driver := StorageDriver(s.Registry.Storage); driver == "filesystem" {
		fs, _ := s.Registry.Storage["filesystem"].(map[string]any)
		root, _ := fs["rootdirectory"].(string)
		if root == "" {
			root = filepath.Join(p.DataDir, "gitlab-rails", "shared", "registry")
		}
		p.StorageRoot = abs(root)
	}
	p.RegistryPath = p.StorageRoot
	if s.Registry.NotificationsQueueDirectory != "" {
		p.NotifyQueue = abs(s.Registry.NotificationsQueueDirectory)
	}
	if s.GitlabRails.RegistryPath != "" {
		p.RegistryPath = abs(s.GitlabRails.RegistryPath)
	}
	return p
}

// pathSettings are the settings that name a file or a folder.
var pathSettings = [][]string{
	{"data_dir"},
	{"registry", "rootcertbundle"},
	{"registry", "notifications_queue_directory"},
	{"registry", "storage", "filesystem", "rootdirectory"},
	{"registry", "storage", "s3", "rootdirectory"},
	{"registry", "redis", "tls", "certificate"},
	{"registry", "redis", "tls", "key"},
	{"registry", "redis", "tls", "rootcas"},
	{"gitlab_rails", "registry_key_path"},
	{"gitlab_rails", "registry_path"},
	{"migration", "s3", "rootdirectory"},
}

// validatePaths refuses a control character in any path setting. The
// rendered YAML would keep it (every string is quoted and escaped), but
// no admin means one, and it would reach logs and shells raw.
func validatePaths(l *Loaded, ps *problems) {
	for _, path := range pathSettings {
		v, _ := l.lookup(path)
		values, isList := v.([]any)
		if !isList {
			values = []any{v}
		}
		for i, e := range values {
			s, _ := e.(string)
			if r, bad := controlChar(s); bad && isList {
				ps.add(path, "item %d has a control character (%U): a path must not have any", i, r)
			} else if bad {
				ps.add(path, "has a control character (%U): a path must not have any", r)
			}
		}
	}
}

// controlChar finds a control character (C0, DEL, C1) or a line or
// paragraph separator, which YAML 1.1 reads as a line break.
func controlChar(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return r, true
		}
	}
	return 0, false
}

// StorageDriver names the storage driver; filesystem when none is set.
func StorageDriver(storage map[string]any) string {
	for _, d := range storageDrivers {
		if _, ok := storage[d]; ok {
			return d
		}
	}
	return "filesystem"
}

// TokenRealm is where clients fetch tokens: token_realm (or external_url)
// followed by /jwt/auth, as omnibus renders it.
func (s *Settings) TokenRealm() string {
	base := s.Registry.TokenRealm
	if base == "" {
		base = s.ExternalURL
	}
	return strings.TrimSuffix(base, "/") + "/jwt/auth"
}

// RegistryExternal is registry_external_url, defaulting to the GitLab host
// on port 5050 (the admin guide's "existing GitLab domain" layout).
func (s *Settings) RegistryExternal() string {
	if s.RegistryExternalURL != "" {
		return s.RegistryExternalURL
	}
	u, err := url.Parse(s.ExternalURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), "5050")
}

// RegistryHostPort is what GitLab shows users: host and port of the
// registry's external URL. The port is 0, left out, for 80 and 443, so
// that `docker login host` works without one. It is a number, so that it
// renders without the leading zeros a string may have ("05050"), which
// YAML 1.1 (GitLab's Ruby) would read as octal.
func (s *Settings) RegistryHostPort() (host string, port int) {
	var p string
	u, _ := url.Parse(s.RegistryExternal())
	if u != nil {
		host, p = u.Hostname(), u.Port()
	}
	if s.GitlabRails.RegistryHost != "" {
		host = s.GitlabRails.RegistryHost
	}
	if s.GitlabRails.RegistryPort != "" {
		p = string(s.GitlabRails.RegistryPort)
	}
	port, _ = strconv.Atoi(p) // validated: 1 to 65535
	if port == 80 || port == 443 {
		port = 0
	}
	return host, port
}

// RegistryAPIURL is how GitLab reaches the registry internally.
func (s *Settings) RegistryAPIURL() string {
	if s.GitlabRails.RegistryAPIURL != "" {
		return s.GitlabRails.RegistryAPIURL
	}
	return "http://" + s.Registry.RegistryHTTPAddr
}

// ReadOnly reports storage.maintenance.readonly.enabled.
func (s *Settings) ReadOnly() bool {
	m, _ := s.Registry.Storage["maintenance"].(map[string]any)
	ro, _ := m["readonly"].(map[string]any)
	on, _ := ro["enabled"].(bool)
	return on
}
