package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

var checkOrder = []string{
	CheckCertParses, CheckKeyParses, CheckKeyType, CheckPairMatches,
	CheckIssuers, CheckValidity, CheckSecrets,
}

// want describes what one check must report in a case.
type want struct {
	status Status
	detail []string // substrings of Detail
	fix    []string // substrings of Fix
}

func TestVerify(t *testing.T) {
	f := getFixture(t)
	modA, _ := ModulusSHA256(f.keyA)
	modB, _ := ModulusSHA256(f.keyB)
	ecKeyPEM := readTestdata(t, "ec-p256-sec1.pem")
	ecKey := mustKey(t, ecKeyPEM)
	ecKID, _ := LibtrustKeyID(ecKey.Public())
	weakPEM := readTestdata(t, "rsa-1024-pkcs1.pem")
	edPEM := readTestdata(t, "ed25519-pkcs8.pem")
	edKey := mustKey(t, edPEM)

	now := f.certA.NotBefore.Add(24 * time.Hour) // one day into the fixture's validity
	notAfter := f.certA.NotAfter

	// good is a consistent setup; each case changes what it tests.
	good := func() VerifyInput {
		return VerifyInput{
			CertPath: "/var/opt/regctl/registry/gitlab-registry.crt", CertPEM: f.certPEM,
			KeyPath: "/var/opt/regctl/gitlab-rails/etc/gitlab-registry.key", KeyPEM: f.keyPEM,
			RegistryIssuer: "omnibus-gitlab-issuer", GitLabIssuer: "omnibus-gitlab-issuer",
			SecretsCertPEM: f.certPEM, SecretsKeyPEM: f.keyPEM,
			Now: now,
		}
	}
	allOK := map[string]want{}
	for _, n := range checkOrder {
		allOK[n] = want{status: OK}
	}
	with := func(over map[string]want) map[string]want {
		m := map[string]want{}
		for k, v := range allOK {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		return m
	}
	cannot := want{status: Fail, detail: []string{"cannot check"}}

	tests := []struct {
		name   string
		mod    func(*VerifyInput)
		want   map[string]want
		passed bool
	}{
		{
			name: "good pair",
			mod:  func(*VerifyInput) {},
			want: with(map[string]want{
				CheckCertParses:  {status: OK, detail: []string{"gitlab-registry.crt", "C=USA, O=GitLab, OU=Container, CN=Registry", "serial 00", "key id "}},
				CheckKeyParses:   {status: OK, detail: []string{"gitlab-registry.key", "RSA 2048"}},
				CheckKeyType:     {status: OK, detail: []string{"RSA 2048", "omnibus uses 4096"}},
				CheckPairMatches: {status: OK, detail: []string{"certificate " + modA, "key " + modA}},
				CheckIssuers:     {status: OK, detail: []string{`"omnibus-gitlab-issuer"`}},
				CheckValidity:    {status: OK, detail: []string{notAfter.Format("2006-01-02"), "3649 days left"}},
				CheckSecrets:     {status: OK, detail: []string{"same as regctl-secrets.json"}},
			}),
			passed: true,
		},
		{
			name: "no secrets file",
			mod:  func(in *VerifyInput) { in.SecretsCertPEM, in.SecretsKeyPEM = nil, nil },
			want: with(map[string]want{
				CheckSecrets: {status: Warn, detail: []string{"no secrets file"}, fix: []string{"regctl-secrets.json"}},
			}),
			passed: true,
		},
		{
			name: "mismatched pair",
			mod: func(in *VerifyInput) {
				in.KeyPEM = f.keyBPEM
				in.SecretsKeyPEM = f.keyBPEM
			},
			want: with(map[string]want{
				CheckPairMatches: {status: Fail,
					detail: []string{"not for this key", "certificate " + modA, "key " + modB},
					fix:    []string{"untrusted key", "regctl certs generate --force", "restart the registry and GitLab"}},
			}),
		},
		{
			name: "issuer mismatch",
			mod:  func(in *VerifyInput) { in.GitLabIssuer = "gitlab-issuer" },
			want: with(map[string]want{
				CheckIssuers: {status: Fail,
					detail: []string{`auth.token.issuer "omnibus-gitlab-issuer"`, `registry.issuer "gitlab-issuer"`},
					fix:    []string{"gitlab_rails.registry_issuer", "regctl.toml", "regctl reconfigure"}},
			}),
		},
		{
			name: "issuers differ in whitespace",
			mod:  func(in *VerifyInput) { in.GitLabIssuer += " " },
			want: with(map[string]want{
				CheckIssuers: {status: Fail, detail: []string{"only in whitespace"}, fix: []string{"gitlab_rails.registry_issuer"}},
			}),
		},
		{
			name: "issuers both empty",
			mod:  func(in *VerifyInput) { in.GitLabIssuer, in.RegistryIssuer = "", "" },
			want: with(map[string]want{
				CheckIssuers: {status: Fail, detail: []string{"empty on both sides"}, fix: []string{"gitlab_rails.registry_issuer"}},
			}),
		},
		{
			name: "expired",
			mod:  func(in *VerifyInput) { in.Now = notAfter.Add(48 * time.Hour) },
			want: with(map[string]want{
				CheckValidity: {status: Fail, detail: []string{"expired on " + notAfter.Format("2006-01-02"), "2 days ago"},
					fix: []string{"regctl certs generate --force"}},
			}),
		},
		{
			name: "expired certificate from 11 years ago",
			mod: func(in *VerifyInput) {
				old := certPEMAt(t, f.keyA, t0.AddDate(-11, 0, 0))
				in.CertPEM, in.SecretsCertPEM = old, old
			},
			want: with(map[string]want{
				CheckValidity: {status: Fail, detail: []string{"expired on"}, fix: []string{"regctl certs generate --force"}},
			}),
		},
		{
			name: "not yet valid",
			mod:  func(in *VerifyInput) { in.Now = t0.Add(-72 * time.Hour) },
			want: with(map[string]want{
				CheckValidity: {status: Fail, detail: []string{"not valid before", "days from now"}, fix: []string{"clock"}},
			}),
		},
		{
			name: "expires in 10 days",
			mod:  func(in *VerifyInput) { in.Now = notAfter.Add(-10 * 24 * time.Hour) },
			want: with(map[string]want{
				CheckValidity: {status: Warn, detail: []string{"10 days left"}, fix: []string{"regctl certs generate --force"}},
			}),
			passed: true,
		},
		{
			name: "expires in exactly 30 days is OK",
			mod:  func(in *VerifyInput) { in.Now = notAfter.Add(-30 * 24 * time.Hour) },
			want: with(map[string]want{
				CheckValidity: {status: OK, detail: []string{"30 days left"}},
			}),
			passed: true,
		},
		{
			name: "last second of validity",
			mod:  func(in *VerifyInput) { in.Now = notAfter },
			want: with(map[string]want{
				CheckValidity: {status: Warn, detail: []string{"0 days left"}},
			}),
			passed: true,
		},
		{
			name: "garbage certificate",
			mod:  func(in *VerifyInput) { in.CertPEM = []byte("this is not PEM") },
			want: with(map[string]want{
				CheckCertParses:  {status: Fail, detail: []string{"gitlab-registry.crt", "no PEM data"}, fix: []string{"rootcertbundle", "regctl reconfigure"}},
				CheckKeyType:     {status: OK, detail: []string{"RSA 2048"}},
				CheckPairMatches: {status: Fail, detail: []string{"cannot check: the certificate did not parse"}},
				CheckValidity:    cannot,
				CheckSecrets:     {status: Fail, detail: []string{"differs from regctl-secrets.json: /var/opt/regctl/registry/gitlab-registry.crt"}},
			}),
		},
		{
			name: "garbage key",
			mod:  func(in *VerifyInput) { in.KeyPEM = []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n") },
			want: with(map[string]want{
				CheckKeyParses:   {status: Fail, detail: []string{"gitlab-registry.key", "truncated"}, fix: []string{"registry.key"}},
				CheckKeyType:     {status: OK, detail: []string{"from the certificate"}},
				CheckPairMatches: {status: Fail, detail: []string{"cannot check: the key did not parse"}},
				CheckSecrets:     {status: Fail, detail: []string{"differs", "gitlab-registry.key"}},
			}),
		},
		{
			name: "garbage everywhere, no paths, no secrets",
			mod: func(in *VerifyInput) {
				*in = VerifyInput{CertPEM: []byte("x"), KeyPEM: nil, Now: now}
			},
			want: map[string]want{
				CheckCertParses:  {status: Fail, detail: []string{"certificate: "}},
				CheckKeyParses:   {status: Fail, detail: []string{"key: ", "empty"}},
				CheckKeyType:     {status: Fail, detail: []string{"neither"}},
				CheckPairMatches: {status: Fail, detail: []string{"the certificate and the key did not parse"}},
				CheckIssuers:     {status: Fail, detail: []string{"empty on both sides"}},
				CheckValidity:    cannot,
				CheckSecrets:     {status: Warn, detail: []string{"no secrets file"}},
			},
		},
		{
			name: "cert and key swapped",
			mod:  func(in *VerifyInput) { in.CertPEM, in.KeyPEM = in.KeyPEM, in.CertPEM },
			want: with(map[string]want{
				CheckCertParses:  {status: Fail, detail: []string{"swapped"}},
				CheckKeyParses:   {status: Fail, detail: []string{"swapped"}},
				CheckKeyType:     {status: Fail, detail: []string{"neither"}},
				CheckPairMatches: cannot,
				CheckValidity:    cannot,
				CheckSecrets:     {status: Fail, detail: []string{"differs"}},
			}),
		},
		{
			name: "secrets differ from files",
			mod:  func(in *VerifyInput) { in.SecretsCertPEM, in.SecretsKeyPEM = f.certBPEM, f.keyBPEM },
			want: with(map[string]want{
				CheckSecrets: {status: Fail, detail: []string{"differs from regctl-secrets.json", "gitlab-registry.crt", "gitlab-registry.key"},
					fix: []string{"regctl reconfigure", "regctl certs generate --force"}},
			}),
		},
		{
			name: "only the key differs from the secrets",
			mod:  func(in *VerifyInput) { in.SecretsKeyPEM = f.keyBPEM },
			want: with(map[string]want{
				CheckSecrets: {status: Fail, detail: []string{"differs from regctl-secrets.json: /var/opt/regctl/gitlab-rails/etc/gitlab-registry.key", "same as regctl-secrets.json: /var/opt/regctl/registry/gitlab-registry.crt"}},
			}),
		},
		{
			name:   "secrets equal after PEM normalisation (CRLF, 76 columns)",
			mod:    func(in *VerifyInput) { in.SecretsCertPEM, in.SecretsKeyPEM = rewrap(f.certPEM), rewrap(f.keyPEM) },
			want:   allOK,
			passed: true,
		},
		{
			name: "secrets know only the certificate",
			mod:  func(in *VerifyInput) { in.SecretsKeyPEM = nil },
			want: with(map[string]want{
				CheckSecrets: {status: Warn, detail: []string{"not in regctl-secrets.json: /var/opt/regctl/gitlab-rails/etc/gitlab-registry.key"}, fix: []string{"incomplete"}},
			}),
			passed: true,
		},
		{
			name: "EC P-256 pair",
			mod: func(in *VerifyInput) {
				c := certPEMAt(t, ecKey, t0)
				in.CertPEM, in.KeyPEM, in.SecretsCertPEM, in.SecretsKeyPEM = c, ecKeyPEM, c, ecKeyPEM
			},
			want: with(map[string]want{
				CheckKeyType:     {status: Warn, fix: []string{"regctl certs generate --force"}, detail: []string{"ECDSA P-256"}},
				CheckPairMatches: {status: OK, detail: []string{"key id: certificate " + ecKID, "key " + ecKID}},
			}),
			passed: true,
		},
		{
			name: "EC key with RSA certificate",
			mod:  func(in *VerifyInput) { in.KeyPEM, in.SecretsKeyPEM = ecKeyPEM, ecKeyPEM },
			want: with(map[string]want{
				CheckKeyType:     {status: Warn, fix: []string{"regctl certs generate --force"}, detail: []string{"ECDSA P-256"}},
				CheckPairMatches: {status: Fail, detail: []string{"RSA 2048", "ECDSA P-256"}, fix: []string{"regctl certs generate --force"}},
			}),
		},
		{
			name: "RSA 1024 is too small",
			mod: func(in *VerifyInput) {
				c := certPEMAt(t, mustKey(t, weakPEM), t0)
				in.CertPEM, in.KeyPEM, in.SecretsCertPEM, in.SecretsKeyPEM = c, weakPEM, c, weakPEM
			},
			want: with(map[string]want{
				CheckKeyType: {status: Fail, detail: []string{"RSA 1024", "too small"}, fix: []string{"regctl certs generate --force", "RSA 4096"}},
			}),
		},
		{
			name: "Ed25519 is not supported",
			mod: func(in *VerifyInput) {
				c := certPEMAt(t, edKey, t0)
				in.CertPEM, in.KeyPEM, in.SecretsCertPEM, in.SecretsKeyPEM = c, edPEM, c, edPEM
			},
			want: with(map[string]want{
				CheckKeyType:     {status: Fail, detail: []string{"Ed25519", "not supported"}},
				CheckPairMatches: {status: OK, detail: []string{"key id"}},
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			tt.mod(&in)
			checks := Verify(in)
			assertShape(t, checks)
			for _, c := range checks {
				w, ok := tt.want[c.Name]
				if !ok {
					t.Fatalf("no expectation for %q", c.Name)
				}
				if c.Status != w.status {
					t.Errorf("%s: status %v, want %v (detail %q)", c.Name, c.Status, w.status, c.Detail)
				}
				for _, s := range w.detail {
					if !strings.Contains(c.Detail, s) {
						t.Errorf("%s: detail %q lacks %q", c.Name, c.Detail, s)
					}
				}
				for _, s := range w.fix {
					if !strings.Contains(c.Fix, s) {
						t.Errorf("%s: fix %q lacks %q", c.Name, c.Fix, s)
					}
				}
			}
			if got := Passed(checks); got != tt.passed {
				t.Errorf("Passed = %v, want %v", got, tt.passed)
			}
		})
	}
}

// assertShape checks what holds for every Verify result: all checks, in
// order, each with a detail, and a fix exactly when not OK.
func assertShape(t *testing.T, checks []Check) {
	t.Helper()
	if len(checks) != len(checkOrder) {
		t.Fatalf("got %d checks, want %d", len(checks), len(checkOrder))
	}
	for i, c := range checks {
		if c.Name != checkOrder[i] {
			t.Errorf("check %d is %q, want %q", i, c.Name, checkOrder[i])
		}
		if c.Detail == "" {
			t.Errorf("%s: empty detail", c.Name)
		}
		if (c.Status == OK) != (c.Fix == "") {
			t.Errorf("%s: status %v with fix %q", c.Name, c.Status, c.Fix)
		}
		if c.Status != OK && c.Status != Warn && c.Status != Fail {
			t.Errorf("%s: invalid status %d", c.Name, c.Status)
		}
	}
}

func TestVerifyZeroNowUsesClock(t *testing.T) {
	f := getFixture(t)
	// A certificate made a year before the real clock is OK by the real
	// clock; Now is left zero.
	c := certPEMAt(t, f.keyA, time.Now().AddDate(-1, 0, 0))
	checks := Verify(VerifyInput{CertPEM: c, KeyPEM: f.keyPEM})
	if v := checks[5]; v.Name != CheckValidity || v.Status != OK {
		t.Errorf("validity with zero Now: %+v", v)
	}
}

func TestJudgeKey(t *testing.T) {
	rsaBits := func(bits int) *rsa.PublicKey {
		return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), E: 65537}
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name   string
		pub    crypto.PublicKey
		status Status
		detail string
	}{
		{"RSA 1024", rsaBits(1024), Fail, "too small"},
		{"RSA 2047", rsaBits(2047), Fail, "too small"},
		{"RSA 2048", rsaBits(2048), OK, "omnibus uses 4096"},
		{"RSA 3072", rsaBits(3072), OK, "RSA 3072"},
		{"RSA 4096", rsaBits(4096), OK, "omnibus default"},
		{"RSA 8192", rsaBits(8192), OK, "RSA 8192"},
		{"RSA nil modulus", &rsa.PublicKey{}, Fail, "invalid"},
		{"P-224", &ecdsa.PublicKey{Curve: elliptic.P224()}, Fail, "P-224"},
		{"P-256", &ecdsa.PublicKey{Curve: elliptic.P256()}, Warn, "ECDSA P-256"},
		{"P-384", &ecdsa.PublicKey{Curve: elliptic.P384()}, Warn, "ECDSA P-384"},
		{"P-521", &ecdsa.PublicKey{Curve: elliptic.P521()}, Warn, "ECDSA P-521"},
		{"EC no curve", &ecdsa.PublicKey{}, Fail, "not supported"},
		{"Ed25519", edPub, Fail, "not supported"},
		{"nil", nil, Fail, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, detail := judgeKey(tt.pub)
			if st != tt.status || !strings.Contains(detail, tt.detail) {
				t.Errorf("got %v %q, want %v containing %q", st, detail, tt.status, tt.detail)
			}
		})
	}
}

func TestPassed(t *testing.T) {
	tests := []struct {
		name string
		in   []Status
		want bool
	}{
		{"none", nil, true},
		{"all ok", []Status{OK, OK}, true},
		{"warnings pass", []Status{OK, Warn, Warn}, true},
		{"one fail", []Status{OK, Fail, Warn}, false},
		{"only fail", []Status{Fail}, false},
	}
	for _, tt := range tests {
		var checks []Check
		for _, s := range tt.in {
			checks = append(checks, Check{Status: s})
		}
		if got := Passed(checks); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		s    Status
		str  string
		text string // "" = MarshalText errors
	}{
		{OK, "OK", "ok"},
		{Warn, "WARN", "warn"},
		{Fail, "FAIL", "fail"},
		{Status(0), "Status(0)", ""},
		{Status(9), "Status(9)", ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.str {
			t.Errorf("String(%d) = %q, want %q", int(tt.s), got, tt.str)
		}
		b, err := tt.s.MarshalText()
		if tt.text == "" {
			if err == nil {
				t.Errorf("MarshalText(%d): want error", int(tt.s))
			}
			continue
		}
		if err != nil || string(b) != tt.text {
			t.Errorf("MarshalText(%v) = %q, %v", tt.s, b, err)
		}
		var back Status
		if err := back.UnmarshalText(b); err != nil || back != tt.s {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	var s Status
	if err := s.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("UnmarshalText(maybe): want error")
	}

	// JSON, as `regctl certs verify --output json` would emit it.
	b, err := json.Marshal([]Check{{Name: "n", Status: Warn, Detail: "d", Fix: "f"}, {Name: "m", Status: OK, Detail: "e"}})
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `[{"name":"n","status":"warn","detail":"d","fix":"f"},{"name":"m","status":"ok","detail":"e"}]`
	if string(b) != wantJSON {
		t.Errorf("json = %s, want %s", b, wantJSON)
	}
	var back []Check
	if err := json.Unmarshal(b, &back); err != nil || back[0].Status != Warn || back[1].Status != OK {
		t.Errorf("json round trip: %+v, %v", back, err)
	}
}

func TestNormalisePEM(t *testing.T) {
	f := getFixture(t)
	tests := []struct {
		name string
		a, b []byte
		same bool
	}{
		{"identical", f.certPEM, f.certPEM, true},
		{"CRLF and rewrapped", f.certPEM, rewrap(f.certPEM), true},
		{"surrounding text and blank lines", f.certPEM, append(append([]byte("comment\n\n"), f.certPEM...), "\n\n"...), true},
		{"different certificates", f.certPEM, f.certBPEM, false},
		{"block order matters", append(append([]byte{}, f.certPEM...), f.keyPEM...), append(append([]byte{}, f.keyPEM...), f.certPEM...), false},
		{"non-PEM compared trimmed", []byte("  abc\n"), []byte("abc"), true},
		{"non-PEM differs", []byte("abc"), []byte("abd"), false},
	}
	for _, tt := range tests {
		got := string(normalisePEM(tt.a)) == string(normalisePEM(tt.b))
		if got != tt.same {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.same)
		}
	}
}
