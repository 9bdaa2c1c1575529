package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status int

// The zero Status is deliberately not OK, so a check that was never filled
// in cannot pass by accident.
const (
	OK Status = iota + 1
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText makes --output json print "ok"/"warn"/"fail", not numbers.
func (s Status) MarshalText() ([]byte, error) {
	switch s {
	case OK, Warn, Fail:
		return []byte(strings.ToLower(s.String())), nil
	}
	return nil, fmt.Errorf("invalid status %d", int(s))
}

// UnmarshalText is the inverse of MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "ok":
		*s = OK
	case "warn":
		*s = Warn
	case "fail":
		*s = Fail
	default:
		return fmt.Errorf("invalid status %q", b)
	}
	return nil
}

// Check is one line of `regctl certs verify`. Fix says how to repair it and
// is set whenever Status is Warn or Fail.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Names of the checks, in the order Verify returns them.
const (
	CheckCertParses  = "certificate parses"
	CheckKeyParses   = "key parses"
	CheckKeyType     = "key type and size"
	CheckPairMatches = "certificate matches key"
	CheckIssuers     = "issuers match"
	CheckValidity    = "certificate validity"
	CheckSecrets     = "files match secrets"
)

// ExpiryWarning is how close to NotAfter the validity check starts warning.
const ExpiryWarning = 30 * 24 * time.Hour

// VerifyInput is everything `regctl certs verify` compares. The caller reads
// the files; paths are only used in messages.
type VerifyInput struct {
	CertPath string // auth.token.rootcertbundle in config.yml
	CertPEM  []byte
	KeyPath  string // registry.key in gitlab.yml
	KeyPEM   []byte

	RegistryIssuer string // auth.token.issuer in config.yml
	GitLabIssuer   string // production.registry.issuer in gitlab.yml

	// From regctl-secrets.json (internal_certificate, internal_key). Empty
	// means not known: that comparison is reported as Warn.
	SecretsCertPEM []byte
	SecretsKeyPEM  []byte

	Now time.Time // zero means time.Now()
}

// Fix texts, kept in one place so the wording stays consistent.
const (
	fixNewPair = "run `regctl certs generate --force` to make a new key pair and rewrite both files, " +
		"then restart the registry and GitLab so both load it"
	fixRewrite = "run `regctl reconfigure` to rewrite the files from regctl-secrets.json, or " + fixNewPair
	fixIssuer  = "set `gitlab_rails.registry_issuer` in regctl.toml (it feeds both files), then run `regctl reconfigure`"
	fixSecrets = "run `regctl reconfigure` to rewrite the files from the secrets, " +
		"or `regctl certs generate --force` to make a new pair"
	// reconfigure generates missing secrets, so without the file it would
	// replace the pair rather than record it: say so instead of suggesting it.
	fixNoSecrets = "keep regctl-secrets.json beside regctl.toml; without it `regctl reconfigure` " +
		"generates a new pair and overwrites these files (restart the registry and GitLab afterwards)"
)

// Verify runs every check, always in the same order and always all of them,
// so output and JSON keep a stable shape. A check that needs an input which
// failed to parse is reported as Fail with "cannot check: ..." rather than
// skipped: nothing unverified ever shows as OK, and the first Fail in the
// list is the one to fix.
func Verify(in VerifyInput) []Check {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	cert, certCheck := checkCert(in.CertPEM, in.CertPath)
	key, keyCheck := checkKey(in.KeyPEM, in.KeyPath)

	return []Check{
		certCheck,
		keyCheck,
		checkKeyType(cert, key),
		checkPair(cert, key),
		checkIssuers(in.RegistryIssuer, in.GitLabIssuer),
		checkValidity(cert, now),
		checkSecrets(in),
	}
}

// Passed reports whether no check failed; warnings do not fail.
func Passed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// withPath prefixes a parse error with the file it came from; the error
// already names what was parsed ("certificate: ...").
func withPath(path string, err error) string {
	if path == "" {
		return err.Error()
	}
	return path + ": " + err.Error()
}

func label(path, fallback string) string {
	if path == "" {
		return fallback
	}
	return path
}

func checkCert(b []byte, path string) (*x509.Certificate, Check) {
	name := label(path, "certificate")
	c := Check{Name: CheckCertParses}
	cert, err := ParseCertificatePEM(b)
	if err != nil {
		c.Status, c.Detail = Fail, withPath(path, err)
		c.Fix = "auth.token.rootcertbundle must be a PEM certificate; " + fixRewrite
		return nil, c
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("%s: %s, serial %s", name, FormatName(cert.Subject), formatSerial(cert))
	if kid, err := LibtrustKeyID(cert.PublicKey); err == nil {
		c.Detail += ", key id " + kid
	}
	return cert, c
}

func checkKey(b []byte, path string) (crypto.Signer, Check) {
	name := label(path, "key")
	c := Check{Name: CheckKeyParses}
	key, err := ParsePrivateKeyPEM(b)
	if err != nil {
		c.Status, c.Detail = Fail, withPath(path, err)
		c.Fix = "registry.key must be an unencrypted PEM private key; " + fixRewrite
		return nil, c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s: %s", name, KeyType(key.Public()))
	return key, c
}

// checkKeyType judges the key; when the key did not parse it falls back to
// the certificate's public key, which says just as much about type and size.
func checkKeyType(cert *x509.Certificate, key crypto.Signer) Check {
	c := Check{Name: CheckKeyType}
	var pub crypto.PublicKey
	from := ""
	switch {
	case key != nil:
		pub = key.Public()
	case cert != nil:
		pub, from = cert.PublicKey, " (from the certificate; the key did not parse)"
	default:
		c.Status, c.Detail = Fail, "cannot check: neither the certificate nor the key parsed"
		c.Fix = "fix the parse errors above first"
		return c
	}
	c.Status, c.Detail = judgeKey(pub)
	c.Detail += from
	if c.Status != OK {
		c.Fix = fixNewPair + " (RSA 4096, as omnibus)"
	}
	return c
}

// judgeKey: RSA >= 2048 and ECDSA P-256 and up are fine; the rest are too
// weak or something GitLab and the registry cannot use for JWTs.
func judgeKey(pub crypto.PublicKey) (Status, string) {
	kt := KeyType(pub)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil {
			return Fail, "invalid RSA key"
		}
		bits := k.N.BitLen()
		switch {
		case bits < MinRSABits:
			return Fail, fmt.Sprintf("%s is too small (minimum %d bits)", kt, MinRSABits)
		case bits == DefaultBits:
			return OK, kt + " (omnibus default)"
		default:
			return OK, fmt.Sprintf("%s (at least %d bits; omnibus uses %d)", kt, MinRSABits, DefaultBits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != nil {
			switch k.Curve.Params().Name {
			case "P-256", "P-384", "P-521":
				// The registry can verify ES* tokens, but GitLab signs
				// registry tokens with RS256 only.
				return Warn, kt + ": GitLab signs registry tokens with RSA keys only (RS256); use an RSA key unless tokens come from another issuer"
			}
		}
		return Fail, kt + " is not supported (want P-256, P-384 or P-521)"
	}
	return Fail, kt + " is not supported (want RSA of at least 2048 bits or ECDSA P-256 and up)"
}

func checkPair(cert *x509.Certificate, key crypto.Signer) Check {
	c := Check{Name: CheckPairMatches}
	if cert == nil || key == nil {
		what := "the certificate"
		if cert != nil {
			what = "the key"
		} else if key == nil {
			what = "the certificate and the key"
		}
		c.Status, c.Detail = Fail, "cannot check: "+what+" did not parse"
		c.Fix = "fix the parse errors above first"
		return c
	}
	pub := key.Public()
	c.Detail = pairDetail(cert.PublicKey, pub)
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if ok && eq.Equal(cert.PublicKey) {
		c.Status = OK
		return c
	}
	c.Status = Fail
	c.Detail = "the certificate is not for this key; " + c.Detail
	// Mirrors the troubleshooting guide's "token signed by untrusted key":
	// the registry cannot verify what GitLab signs until both use one pair.
	c.Fix = "the registry will reject GitLab's tokens (\"token signed by untrusted key\"); " + fixNewPair
	return c
}

// pairDetail shows values a user can compare by hand: the modulus digests
// openssl prints for RSA, otherwise the libtrust key ids.
func pairDetail(certPub, keyPub crypto.PublicKey) string {
	cm, err1 := ModulusSHA256(certPub)
	km, err2 := ModulusSHA256(keyPub)
	if err1 == nil && err2 == nil {
		return fmt.Sprintf("modulus SHA-256: certificate %s, key %s", cm, km)
	}
	ck, _ := LibtrustKeyID(certPub)
	kk, _ := LibtrustKeyID(keyPub)
	return fmt.Sprintf("key id: certificate %s (%s), key %s (%s)", ck, KeyType(certPub), kk, KeyType(keyPub))
}

func checkIssuers(registry, gitlab string) Check {
	c := Check{Name: CheckIssuers}
	c.Detail = fmt.Sprintf("registry auth.token.issuer %q, GitLab registry.issuer %q", registry, gitlab)
	switch {
	case registry == "" && gitlab == "":
		c.Status = Fail
		c.Detail = "issuer is empty on both sides; " + c.Detail
	case registry != gitlab:
		c.Status = Fail
		if strings.TrimSpace(registry) == strings.TrimSpace(gitlab) {
			c.Detail = "issuers differ only in whitespace; " + c.Detail
		} else {
			c.Detail = "issuers differ, the registry will reject GitLab's tokens; " + c.Detail
		}
	default:
		c.Status = OK
		return c
	}
	c.Fix = fixIssuer
	return c
}

func checkValidity(cert *x509.Certificate, now time.Time) Check {
	c := Check{Name: CheckValidity}
	if cert == nil {
		c.Status, c.Detail = Fail, "cannot check: the certificate did not parse"
		c.Fix = "fix the parse errors above first"
		return c
	}
	const day = 24 * time.Hour
	const layout = "2006-01-02 15:04:05 UTC"
	nb, na := cert.NotBefore.UTC(), cert.NotAfter.UTC()
	switch {
	case now.Before(nb):
		c.Status = Fail
		c.Detail = fmt.Sprintf("not valid before %s (%d days from now)", nb.Format(layout), int(nb.Sub(now)/day))
		c.Fix = "check the system clock; if it is right, " + fixNewPair
	case now.After(na):
		c.Status = Fail
		c.Detail = fmt.Sprintf("expired on %s (%d days ago)", na.Format(layout), int(now.Sub(na)/day))
		c.Fix = fixNewPair
	case na.Sub(now) < ExpiryWarning:
		c.Status = Warn
		c.Detail = fmt.Sprintf("expires %s (%d days left)", na.Format(layout), int(na.Sub(now)/day))
		c.Fix = "rotate before it expires: " + fixNewPair
	default:
		c.Status = OK
		c.Detail = fmt.Sprintf("valid until %s (%d days left)", na.Format(layout), int(na.Sub(now)/day))
	}
	return c
}

// checkSecrets compares the files with regctl-secrets.json, which is the
// source `regctl reconfigure` writes them from: a difference means someone
// edited a file by hand and the next reconfigure will undo it.
func checkSecrets(in VerifyInput) Check {
	c := Check{Name: CheckSecrets}
	haveCert, haveKey := len(bytes.TrimSpace(in.SecretsCertPEM)) > 0, len(bytes.TrimSpace(in.SecretsKeyPEM)) > 0
	if !haveCert && !haveKey {
		c.Status, c.Detail = Warn, "no secrets file: cannot compare the files with regctl-secrets.json"
		c.Fix = fixNoSecrets
		return c
	}
	var differ, same, unknown []string
	compare := func(have bool, file, secret []byte, what string) {
		switch {
		case !have:
			unknown = append(unknown, what)
		case bytes.Equal(normalisePEM(file), normalisePEM(secret)):
			same = append(same, what)
		default:
			differ = append(differ, what)
		}
	}
	compare(haveCert, in.CertPEM, in.SecretsCertPEM, label(in.CertPath, "certificate file"))
	compare(haveKey, in.KeyPEM, in.SecretsKeyPEM, label(in.KeyPath, "key file"))
	var parts []string
	if len(differ) > 0 {
		parts = append(parts, "differs from regctl-secrets.json: "+strings.Join(differ, ", "))
	}
	if len(same) > 0 {
		parts = append(parts, "same as regctl-secrets.json: "+strings.Join(same, ", "))
	}
	if len(unknown) > 0 {
		parts = append(parts, "not in regctl-secrets.json: "+strings.Join(unknown, ", "))
	}
	c.Detail = strings.Join(parts, "; ")
	switch {
	case len(differ) > 0:
		c.Status, c.Fix = Fail, fixSecrets
	case len(unknown) > 0:
		c.Status, c.Fix = Warn, "regctl-secrets.json is incomplete; "+fixNewPair
	default:
		c.Status = OK
	}
	return c
}

// normalisePEM re-encodes every PEM block so line endings, line width and
// surrounding text or whitespace do not count as a difference. Input with no
// PEM block is compared as trimmed bytes.
func normalisePEM(b []byte) []byte {
	blocks, err := pemBlocks(b)
	if err != nil {
		return bytes.TrimSpace(b)
	}
	var out []byte
	for _, blk := range blocks {
		out = append(out, pem.EncodeToMemory(blk)...)
	}
	return out
}
