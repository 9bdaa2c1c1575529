package settings

import (
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"regctl/pkg/certs"
)

var (
	logLevels     = []string{"error", "warn", "info", "debug"}
	logFormatters = []string{"text", "json", "logfmt"}
)

// validate checks values once the shape is known to be right. Every check
// runs, so the user sees every problem at once.
func validate(l *Loaded, ps *problems) {
	s := &l.Settings
	checkURL(ps, s.ExternalURL, "external_url")
	if s.RegistryExternalURL != "" {
		checkURL(ps, s.RegistryExternalURL, "registry_external_url")
	}
	if s.DataDir == "" {
		ps.add([]string{"data_dir"}, "must not be empty")
	}
	validatePaths(l, ps)

	r := &s.Registry
	checkAddr(ps, r.RegistryHTTPAddr, "registry", "registry_http_addr")
	validateCluster(ps, r)
	if r.DebugAddr != "" {
		checkAddr(ps, r.DebugAddr, "registry", "debug_addr")
	}
	checkOneOf(ps, r.LogLevel, logLevels, "registry", "log_level")
	checkOneOf(ps, r.LogFormatter, logFormatters, "registry", "log_formatter")
	if r.TokenRealm != "" {
		checkURL(ps, r.TokenRealm, "registry", "token_realm")
	}
	checkKeyPair(ps, r.InternalKey, r.InternalCertificate)
	validateStorage(ps, r.Storage, []string{"registry", "storage"})
	validateNotifications(ps, r)
	validateCleanupPolicies(ps, r.CleanupPolicies)

	g := &s.GitlabRails
	if strings.Contains(g.RegistryHost, "/") || strings.Contains(g.RegistryHost, ":") {
		at := []string{"gitlab_rails", "registry_host"}
		ps.add(at, "%s must be a host name only (no scheme, port or path); the port goes in registry_port", shown(at, g.RegistryHost))
	}
	if g.RegistryPort != "" {
		checkPort(ps, string(g.RegistryPort), "gitlab_rails", "registry_port")
	}
	if g.RegistryAPIURL != "" {
		checkURL(ps, g.RegistryAPIURL, "gitlab_rails", "registry_api_url")
	}
	if g.RegistryIssuer == "" {
		ps.add([]string{"gitlab_rails", "registry_issuer"}, "must not be empty: GitLab and the registry must agree on it")
	}

	if l.IsSet("migration", "s3") {
		validateS3(ps, s.Migration.S3, []string{"migration", "s3"})
	}
}

func checkURL(ps *problems, v string, path ...string) {
	u, err := url.Parse(v)
	var uerr *url.Error
	switch {
	case errors.As(err, &uerr):
		// Not uerr itself: it quotes the whole URL.
		ps.add(path, "%s is not a URL: %v", shown(path, v), uerr.Err)
	case err != nil:
		ps.add(path, "%s is not a URL", shown(path, v))
	case u.Scheme != "http" && u.Scheme != "https":
		ps.add(path, "%s must start with http:// or https://", shown(path, v))
	case u.Host == "" || u.Hostname() == "":
		ps.add(path, "%s has no host", shown(path, v))
	case u.RawQuery != "" || u.Fragment != "":
		ps.add(path, "%s must not have a query or fragment", shown(path, v))
	default:
		if p := u.Port(); p != "" {
			checkPort(ps, p, path...)
		}
	}
}

func checkAddr(ps *problems, v string, path ...string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		ps.add(path, "%s must be host:port, such as \"127.0.0.1:5000\"", shown(path, v))
		return
	}
	checkPort(ps, port, path...)
}

func checkPort(ps *problems, v string, path ...string) {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		ps.add(path, "port %s is not a number: use 1 to 65535", shown(path, v))
	case n < 1 || n > 65535:
		ps.add(path, "port %s is out of range: use 1 to 65535", shown(path, v))
	}
}

func checkOneOf(ps *problems, v string, allowed []string, path ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ps.add(path, "%s is not one of %s", shown(path, v), strings.Join(allowed, ", "))
}

// checkKeyPair accepts an internal key and certificate given in the
// settings only together and only when they belong to each other: a
// mismatched pair is the "token signed by untrusted key" failure.
func checkKeyPair(ps *problems, keyPEM, certPEM string) {
	if keyPEM == "" && certPEM == "" {
		return
	}
	if keyPEM == "" || certPEM == "" {
		// Point at the key that is set: that is the line to look at.
		set, missing := "internal_key", "internal_certificate"
		if keyPEM == "" {
			set, missing = missing, set
		}
		ps.add([]string{"registry", set}, "is set without %s: set both or neither", missing)
		return
	}
	key, kerr := certs.ParsePrivateKeyPEM([]byte(keyPEM))
	if kerr != nil {
		ps.add([]string{"registry", "internal_key"}, "%v", kerr)
	}
	cert, cerr := certs.ParseCertificatePEM([]byte(certPEM))
	if cerr != nil {
		ps.add([]string{"registry", "internal_certificate"}, "%v", cerr)
	}
	if kerr == nil && cerr == nil && !samePublicKey(cert.PublicKey, key.Public()) {
		ps.add([]string{"registry", "internal_certificate"}, "does not belong to internal_key: tokens signed with the key would be rejected")
	}
}

// validateStorage checks Distribution's storage section: one driver at
// most (none means the default filesystem), and the driver's own rules.
func validateStorage(ps *problems, st map[string]any, path []string) {
	var drivers []string
	for _, d := range storageDrivers {
		if _, ok := st[d]; ok {
			drivers = append(drivers, d)
		}
	}
	if len(drivers) > 1 {
		ps.add(path, "sets %d storage drivers (%s): choose one", len(drivers), strings.Join(drivers, " and "))
	}
	if s3, ok := st["s3"].(map[string]any); ok {
		validateS3(ps, s3, append(path, "s3"))
	}
	if fs, ok := st["filesystem"].(map[string]any); ok {
		if dir, set := fs["rootdirectory"].(string); set && dir == "" {
			ps.add(append(path, "filesystem", "rootdirectory"), "must not be empty (leave it out for the default)")
		}
	}
	if c, ok := st["cache"].(map[string]any); ok {
		if bd, ok := c["blobdescriptor"].(string); ok && bd != "inmemory" && bd != "redis" {
			at := append(path, "cache", "blobdescriptor")
			ps.add(at, "%s is not supported: use \"inmemory\" or \"redis\" (with [registry.redis])", shown(at, bd))
		}
	}
}

const minS3ChunkSize = 5 << 20 // S3's smallest multipart part

func validateS3(ps *problems, s3 map[string]any, path []string) {
	at := func(k string) []string { return append(append([]string(nil), path...), k) }
	for _, k := range []string{"bucket", "region"} {
		if v, _ := s3[k].(string); v == "" {
			ps.add(at(k), "is required for the s3 driver")
		}
	}
	if b, _ := s3["bucket"].(string); strings.Contains(b, "/") {
		ps.add(at("bucket"), "%s must be a bucket name without folders: use rootdirectory for a prefix", shown(at("bucket"), b))
	}
	if ep, ok := s3["regionendpoint"].(string); ok && ep != "" {
		checkURL(ps, ep, at("regionendpoint")...)
	}
	if cs, ok := s3["chunksize"].(int64); ok && cs < minS3ChunkSize {
		ps.add(at("chunksize"), "%s is below S3's minimum part size of %d bytes (5 MiB)", shown(at("chunksize"), cs), minS3ChunkSize)
	}
	for _, k := range []string{"maxrequestspersecond", "multipartcopychunksize", "multipartcopymaxconcurrency", "multipartcopythresholdsize"} {
		if n, ok := s3[k].(int64); ok && n < 0 {
			ps.add(at(k), "must not be negative")
		}
	}
	if kid, _ := s3["keyid"].(string); kid != "" {
		if enc, _ := s3["encrypt"].(bool); !enc {
			// Fail closed: a KMS key without encrypt would store plaintext.
			ps.add(at("keyid"), "is set but encrypt is not true: objects would be stored without SSE-KMS; set encrypt = true")
		}
	}
	if cs, ok := s3["checksum"].(string); ok && cs != "when_required" && cs != "when_supported" {
		// when_required is the default: several S3-compatible servers
		// reject the CRC32 checksums the SDK otherwise adds.
		ps.add(at("checksum"), "%s must be \"when_required\" (the default) or \"when_supported\"", shown(at("checksum"), cs))
	}
	ps1, has1 := s3["pathstyle"].(bool)
	ps2, has2 := s3["forcepathstyle"].(bool)
	if has1 && has2 && ps1 != ps2 {
		ps.add(at("forcepathstyle"), "contradicts pathstyle: set only one")
	}
}

func validateNotifications(ps *problems, r *Registry) {
	if r.NotificationsQueueMaxEvents < 0 {
		ps.add([]string{"registry", "notifications_queue_maxevents"}, "must not be negative (0 or unset: the daemon's default, 100000)")
	}
	eps := r.Notifications
	seen := map[string]int{}
	for i, ep := range eps {
		at := func(k string) []string { return []string{"registry", "notifications", strconv.Itoa(i), k} }
		if ep.Name == "" {
			ps.add(at("name"), "is required: every endpoint needs a name")
		} else if j, dup := seen[ep.Name]; dup {
			ps.add(at("name"), "%s is also the name of endpoint %d", shown(at("name"), ep.Name), j)
		}
		seen[ep.Name] = i
		if ep.URL == "" {
			ps.add(at("url"), "is required: where should events go?")
		} else {
			checkURL(ps, ep.URL, at("url")...)
		}
		if ep.Threshold < 0 {
			ps.add(at("threshold"), "must not be negative")
		}
		if ep.MaxRetries < 0 {
			ps.add(at("maxretries"), "must not be negative")
		}
	}
}

func validateCleanupPolicies(ps *problems, pols []CleanupPolicy) {
	seen := map[string]int{}
	for i, p := range pols {
		at := func(k string) []string { return []string{"registry", "cleanup_policies", strconv.Itoa(i), k} }
		if p.Name == "" {
			ps.add(at("name"), "is required: --policy and the output name policies by it")
		} else if j, dup := seen[p.Name]; dup {
			ps.add(at("name"), "%s is also the name of policy %d", shown(at("name"), p.Name), j)
		} else {
			seen[p.Name] = i
		}
		if len(p.Repositories) == 0 {
			ps.add(at("repositories"), "is required: one or more globs over repository paths (\"group/**\" for a whole group)")
		}
		for _, g := range p.Repositories {
			if g == "" || !doublestar.ValidatePattern(g) {
				ps.add(at("repositories"), "%s is not a valid glob (\"group/*/app\", \"group/**\")", shown(at("repositories"), g))
			}
		}
		for _, k := range []struct{ key, re string }{{"name_regex", p.NameRegex}, {"name_regex_keep", p.NameRegexKeep}} {
			if _, err := regexp.Compile(`\A(?:` + k.re + `)\z`); err != nil {
				ps.add(at(k.key), "%s is not a valid RE2 regular expression: %v", shown(at(k.key), k.re), err)
			}
		}
		if p.KeepN < 0 {
			ps.add(at("keep_n"), "must not be negative")
		}
		if p.OlderThan != "" {
			if _, err := ParseAge(p.OlderThan); err != nil {
				ps.add(at("older_than"), "%v", err)
			}
		}
		if p.Enabled && p.NameRegex != "" && p.KeepN == 0 && p.NameRegexKeep == "" && p.OlderThan == "" {
			ps.warn(at("name_regex"), "policy %q can delete every tag but latest of the repositories it matches: "+
				"it keeps no newest tags (keep_n = 0), has no name_regex_keep and no older_than", p.Name)
		}
	}
}

// DisabledPolicyWarnings are a warning for each cleanup policy that does
// not set enabled = true, in settings order. They are not among Warnings,
// which every command shows: a disabled policy is GitLab's default and
// valid, so reconfigure mentions it, and registry-cleanup names these
// policies in its report.
func (l *Loaded) DisabledPolicyWarnings() []*Problem {
	var out []*Problem
	for i := range l.Settings.Registry.CleanupPolicies {
		if w := l.DisabledPolicyWarning(i); w != nil {
			out = append(out, w)
		}
	}
	return out
}

// DisabledPolicyWarning locates registry.cleanup_policies[i].enabled
// (when the key is not set, the line of the policy's [[...]] header) and
// says what a disabled policy does; nil when policy i is enabled or does
// not exist.
func (l *Loaded) DisabledPolicyWarning(i int) *Problem {
	pols := l.Settings.Registry.CleanupPolicies
	if i < 0 || i >= len(pols) || pols[i].Enabled {
		return nil
	}
	path := []string{"registry", "cleanup_policies", strconv.Itoa(i), "enabled"}
	state, fix := "enabled is not set, and GitLab's default is false", "add enabled = true to the policy"
	if l.IsSet(path...) {
		state, fix = "enabled = false", "set enabled = true"
	}
	ps := newProblems(l.Path, func(p []string) int { return l.index.Line(p...) })
	ps.warn(path, "policy %q is disabled (%s): registry-cleanup skips it, and leaves alone the repositories "+
		"it is the first match of; to run it, %s", pols[i].Name, state, fix)
	return ps.warnings[0]
}

// ParseAge reads cleanup ages as GitLab writes them ("7d", "2w", "90d")
// or as a Go duration ("36h").
func ParseAge(s string) (time.Duration, error) {
	if n, unit := strings.TrimRight(s, "dw"), strings.TrimLeft(s, "0123456789"); n != s && (unit == "d" || unit == "w") {
		days, err := strconv.Atoi(n)
		if err == nil && days >= 0 {
			if unit == "w" {
				days *= 7
			}
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not an age: use days or weeks (\"7d\", \"2w\") or a duration (\"36h\")", s)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
