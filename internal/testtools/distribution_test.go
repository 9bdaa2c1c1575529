package testtools

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// distributionConfig returns a minimal Distribution config listening on addr
// with filesystem storage under dir, followed by extra YAML.
func distributionConfig(dir, addr, extra string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
http:
  addr: %q
%s`, filepath.Join(dir, "storage"), addr, extra)
}

func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func getV2(t *testing.T, addr string) *http.Response {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/: %v", err)
	}
	_ = resp.Body.Close()
	return resp
}

func TestStartDistribution(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), FreeAddr(t)
	p := StartDistribution(t, writeConfig(t, dir, distributionConfig(dir, addr, "")), addr)

	resp := getV2(t, addr)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ = %s, want 200", resp.Status)
	}
	if got := resp.Header.Get("Docker-Distribution-Api-Version"); got != "registry/2.0" {
		t.Errorf("Docker-Distribution-Api-Version = %q, want registry/2.0", got)
	}
	if !strings.Contains(p.Output(), "listening on "+addr) {
		t.Errorf("output lacks %q:\n%s", "listening on "+addr, p.Output())
	}
}

func TestStartDistributionTokenAuth(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), FreeAddr(t)
	bundle := filepath.Join(dir, "gitlab-registry.crt")
	if err := os.WriteFile(bundle, selfSignedCertPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	StartDistribution(t, writeConfig(t, dir, distributionConfig(dir, addr, tokenAuth(bundle))), addr)

	resp := getV2(t, addr)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ = %s, want 401", resp.Status)
	}
	got := resp.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(got, `Bearer realm="https://gitlab.example.com/jwt/auth"`) ||
		!strings.Contains(got, `service="container_registry"`) {
		t.Errorf("WWW-Authenticate = %q, want Bearer with the GitLab realm and service", got)
	}
}

func tokenAuth(bundle string) string {
	return fmt.Sprintf(`auth:
  token:
    realm: https://gitlab.example.com/jwt/auth
    service: container_registry
    issuer: omnibus-gitlab-issuer
    rootcertbundle: %q
`, bundle)
}

// selfSignedCertPEM returns a throwaway self-signed certificate in PEM.
func selfSignedCertPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{Organization: []string{"GitLab"}, OrganizationalUnit: []string{"Container"}, CommonName: "Registry"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Distribution v3.1.2 rejects configs in two ways, both before listening:
// errors found while parsing (YAML syntax, version, not exactly one storage
// driver) print "configuration error: ..." and the usage and exit 1; errors
// found while building the app (unknown storage driver, an unreadable or
// empty token rootcertbundle) panic after a few log lines and exit 2.
// Unknown keys are ignored.
func TestDistributionRejectedConfigs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		extra func(dir string) string // YAML after the minimal config
		raw   func(dir, addr string) string
		want  []string
	}{
		{
			name: "two storage drivers",
			raw: func(dir, addr string) string {
				return strings.Replace(distributionConfig(dir, addr, ""), "storage:\n", "storage:\n  inmemory: {}\n", 1)
			},
			want: []string{"exit status 1", "configuration error", "must provide exactly one storage type"},
		},
		{
			name: "rootcertbundle missing",
			extra: func(dir string) string {
				return tokenAuth(filepath.Join(dir, "absent.crt"))
			},
			want: []string{"exit status 2", "panic: unable to configure authorization (token)", "absent.crt: no such file or directory"},
		},
		{
			name: "rootcertbundle without certificates",
			extra: func(dir string) string {
				path := filepath.Join(dir, "empty.crt")
				if err := os.WriteFile(path, []byte("not a certificate\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return tokenAuth(path)
			},
			want: []string{"exit status 2", "token auth requires at least one token signing key"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, addr := t.TempDir(), FreeAddr(t)
			var config string
			if tc.raw != nil {
				config = tc.raw(dir, addr)
			} else {
				config = distributionConfig(dir, addr, tc.extra(dir))
			}
			p, err := TryStartDistribution(t, writeConfig(t, dir, config), addr)
			if err == nil {
				t.Fatalf("Distribution accepted the config:\n%s", config)
			}
			if p == nil || !p.Exited() {
				t.Fatalf("want an exited process with the error, got %v", p)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// Unknown keys do not stop Distribution: regctl must catch typos itself.
func TestDistributionIgnoresUnknownKeys(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), FreeAddr(t)
	StartDistribution(t, writeConfig(t, dir, distributionConfig(dir, addr, "no_such_key: 1\n")), addr)
	if resp := getV2(t, addr); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ = %s, want 200", resp.Status)
	}
}
