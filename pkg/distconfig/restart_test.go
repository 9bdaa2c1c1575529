package distconfig

import (
	"slices"
	"strings"
	"testing"
)

// restartBase is a config.yml as reconfigure renders it, cut down.
const restartBase = `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: /var/opt/regctl/registry
  delete:
    enabled: true
  maintenance:
    readonly:
      enabled: false
http:
  addr: 127.0.0.1:5000
  secret: s3cr3t
auth:
  token:
    realm: https://gitlab.example.com/jwt/auth
    service: container_registry
    issuer: omnibus-gitlab-issuer
    rootcertbundle: /var/opt/regctl/registry/gitlab-registry.crt
`

func TestCompareConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		old  string // "" means restartBase
		edit func(string) string
		want []string
	}{
		{"nothing", "", func(s string) string { return s }, nil},
		{"log level reloads", "", repl("level: info", "level: debug"), nil},
		{"read-only reloads", "", repl("enabled: false", "enabled: true"), nil},
		{"auth reloads", "", repl("gitlab.example.com", "gitlab.example.org"), nil},
		{"referrers fallback tags reload", "", func(s string) string { return s + "regctl:\n  referrers:\n    fallbacktags: true\n" }, nil},
		{"listen address", "", repl("127.0.0.1:5000", "127.0.0.1:5001"), []string{"http.addr"}},
		{"tls", "", repl("  secret: s3cr3t\n", "  secret: s3cr3t\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n"), []string{"http.tls"}},
		{"storage parameter", "", repl("/var/opt/regctl/registry\n", "/srv/registry\n"), []string{"storage.filesystem"}},
		{"storage driver", "", repl("  filesystem:\n    rootdirectory: /var/opt/regctl/registry\n",
			"  s3:\n    bucket: b\n    region: us-east-1\n"), []string{"storage driver (filesystem -> s3)"}},
		{"deletes", "", repl("enabled: true", "enabled: false"), []string{"storage.delete"}},
		{"formatter and listener", "", func(s string) string {
			return repl("formatter: text", "formatter: json")(repl("127.0.0.1:5000", ":5000")(s))
		}, []string{"http.addr", "log.formatter"}},
		{"old config unreadable", "version: [", func(s string) string { return s }, []string{"the previous config.yml did not parse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.old
			if old == "" {
				old = restartBase
			}
			got, err := CompareConfigs([]byte(old), []byte(tc.edit(restartBase)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("CompareConfigs = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := CompareConfigs([]byte(restartBase), []byte("version: [")); err == nil {
		t.Error("a new config that does not parse: want an error")
	}
}

func repl(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}
