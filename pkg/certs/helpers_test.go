package certs

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/internal/testtools"
)

// t0 is the fixed "now" the shared fixture is generated at. Nanoseconds and
// a non-UTC zone check that NotBefore is truncated and stored as UTC.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 678, time.FixedZone("CET", 3600))

// fixture holds the keys every test shares. RSA generation is the slow
// part of this package's tests, so it happens once per test binary.
type fixture struct {
	keyPEM, certPEM []byte          // from GenerateKeyPairBits(2048, t0)
	keyA            *rsa.PrivateKey // parsed from keyPEM
	certA           *x509.Certificate
	keyB            *rsa.PrivateKey // a second, unrelated key
	keyBPEM         []byte
	certBPEM        []byte // self-signed for keyB at t0
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		fix.keyPEM, fix.certPEM, fixErr = GenerateKeyPairBits(2048, t0)
		if fixErr != nil {
			return
		}
		var s crypto.Signer
		if s, fixErr = ParsePrivateKeyPEM(fix.keyPEM); fixErr != nil {
			return
		}
		fix.keyA = s.(*rsa.PrivateKey)
		if fix.certA, fixErr = ParseCertificatePEM(fix.certPEM); fixErr != nil {
			return
		}
		if fix.keyB, fixErr = rsa.GenerateKey(rand.Reader, 2048); fixErr != nil {
			return
		}
		fix.keyBPEM = pkcs1PEM(fix.keyB)
		var der []byte
		if der, fixErr = selfSign(fix.keyB, t0); fixErr != nil {
			return
		}
		fix.certBPEM = certPEMFromDER(der)
	})
	if fixErr != nil {
		t.Fatalf("fixture: %v", fixErr)
	}
	return &fix
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func certPEMFromDER(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// certPEMAt signs an omnibus-style certificate for key as if made at now.
func certPEMAt(t *testing.T, key crypto.Signer, now time.Time) []byte {
	t.Helper()
	der, err := selfSign(key, now)
	if err != nil {
		t.Fatalf("selfSign: %v", err)
	}
	return certPEMFromDER(der)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKey(t *testing.T, b []byte) crypto.Signer {
	t.Helper()
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatalf("ParsePrivateKeyPEM: %v", err)
	}
	return k
}

// rewrap re-encodes PEM with 76-column lines and CRLF endings: same content,
// different bytes, as an editor or another tool might leave it.
func rewrap(b []byte) []byte {
	var out bytes.Buffer
	rest := b
	for {
		blk, r := pem.Decode(rest)
		if blk == nil {
			break
		}
		rest = r
		enc := base64.StdEncoding.EncodeToString(blk.Bytes)
		out.WriteString("-----BEGIN " + blk.Type + "-----\r\n")
		for len(enc) > 76 {
			out.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		out.WriteString(enc + "\r\n-----END " + blk.Type + "-----\r\n\r\n")
	}
	return out.Bytes()
}

// openssl returns the path of the openssl binary. Missing openssl fails
// the test on CI (testtools.InCI), where it must be installed, and skips it
// elsewhere.
func openssl(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("openssl"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/openssl"); err == nil {
		return "/usr/bin/openssl"
	}
	testtools.SkipOrFail(t, "openssl not found; run %s", testtools.InstallHint)
	return ""
}

// runOpenSSL runs openssl with args and optional stdin and returns stdout.
func runOpenSSL(t *testing.T, bin string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// opensslDigest returns the hex after "= " in `openssl sha256` output,
// which is "SHA2-256(stdin)= ..." on OpenSSL 3 and "(stdin)= ..." on 1.1.
func opensslDigest(t *testing.T, out string) string {
	t.Helper()
	i := strings.LastIndex(out, "= ")
	if i < 0 {
		t.Fatalf("unexpected openssl sha256 output %q", out)
	}
	return strings.TrimSpace(out[i+2:])
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
