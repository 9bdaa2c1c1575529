package certs

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// checkOmnibusCert asserts everything omnibus' generate_registry_keypair
// sets, for a certificate generated at now.
func checkOmnibusCert(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, now time.Time) {
	t.Helper()
	wantNB := now.UTC().Truncate(time.Second)
	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{"version 3", cert.Version == 3, cert.Version},
		{"serial 0", cert.SerialNumber != nil && cert.SerialNumber.Sign() == 0, cert.SerialNumber},
		{"SHA256WithRSA", cert.SignatureAlgorithm == x509.SHA256WithRSA, cert.SignatureAlgorithm},
		{"subject", FormatName(cert.Subject) == "C=USA, O=GitLab, OU=Container, CN=Registry", FormatName(cert.Subject)},
		{"issuer = subject", string(cert.RawIssuer) == string(cert.RawSubject), FormatName(cert.Issuer)},
		{"NotBefore truncated UTC now", cert.NotBefore.Equal(wantNB) && cert.NotBefore.Location() == time.UTC, cert.NotBefore},
		{"NotAfter +3650 days", cert.NotAfter.Equal(wantNB.AddDate(0, 0, 3650)), cert.NotAfter},
		{"no extensions (as omnibus)", len(cert.Extensions) == 0, len(cert.Extensions)},
		{"public key is the key's", key.PublicKey.Equal(cert.PublicKey), KeyType(cert.PublicKey)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %v", c.name, c.got)
		}
	}
	// Self-signed: the signature verifies with its own key. (CheckSignatureFrom
	// would insist on a CA; omnibus' cert has no basicConstraints.)
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("self-signature: %v", err)
	}
}

func TestGenerateKeyPairDefault4096(t *testing.T) {
	now := time.Date(2030, 6, 7, 8, 9, 10, 999999999, time.FixedZone("X", -7*3600))
	keyPEM, certPEM, err := GenerateKeyPair(now)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil || blk.Type != "RSA PRIVATE KEY" {
		t.Fatalf("key PEM type: got %+v, want RSA PRIVATE KEY (PKCS#1)", blk)
	}
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("key is not PKCS#1: %v", err)
	}
	if got := key.N.BitLen(); got != 4096 {
		t.Errorf("default key size: got %d, want 4096", got)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	checkOmnibusCert(t, cert, key, now)

	t.Run("openssl", func(t *testing.T) {
		bin := openssl(t)
		kp, cp := writeTemp(t, "k.pem", keyPEM), writeTemp(t, "c.pem", certPEM)
		if out := runOpenSSL(t, bin, nil, "rsa", "-check", "-noout", "-in", kp); !strings.Contains(out, "RSA key ok") {
			t.Errorf("openssl rsa -check: %q", out)
		}
		want, _ := ModulusSHA256(key.Public())
		for _, args := range [][]string{{"x509", "-noout", "-modulus", "-in", cp}, {"rsa", "-noout", "-modulus", "-in", kp}} {
			mod := runOpenSSL(t, bin, nil, args...)
			if got := opensslDigest(t, runOpenSSL(t, bin, []byte(mod), "sha256")); got != want {
				t.Errorf("openssl %s | openssl sha256 = %s, ModulusSHA256 = %s", args[0], got, want)
			}
		}
	})
}

func TestGenerateKeyPairBits(t *testing.T) {
	f := getFixture(t) // made by GenerateKeyPairBits(2048, t0)
	checkOmnibusCert(t, f.certA, f.keyA, t0)
	if got := f.keyA.N.BitLen(); got != 2048 {
		t.Errorf("bits: got %d, want 2048", got)
	}
	for _, bits := range []int{0, 512, 1024, 2047} {
		if _, _, err := GenerateKeyPairBits(bits, t0); err == nil {
			t.Errorf("GenerateKeyPairBits(%d): want error", bits)
		}
	}
}

// The omnibus subject: C as PrintableString (Ruby's template for countryName),
// the rest UTF8String, in the order /C/O/OU/CN.
func TestSubjectEncoding(t *testing.T) {
	f := getFixture(t)
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type rdnSET []atv // encoding/asn1 decodes a slice type named *SET as SET OF
	var seq []rdnSET
	if rest, err := asn1.Unmarshal(f.certA.RawSubject, &seq); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal subject: %v (rest %d)", err, len(rest))
	}
	want := []struct {
		oid string
		tag int
		val string
	}{
		{"2.5.4.6", asn1.TagPrintableString, "USA"},
		{"2.5.4.10", asn1.TagUTF8String, "GitLab"},
		{"2.5.4.11", asn1.TagUTF8String, "Container"},
		{"2.5.4.3", asn1.TagUTF8String, "Registry"},
	}
	if len(seq) != len(want) {
		t.Fatalf("got %d RDNs, want %d", len(seq), len(want))
	}
	for i, w := range want {
		if len(seq[i]) != 1 {
			t.Fatalf("RDN %d has %d attributes", i, len(seq[i]))
		}
		a := seq[i][0]
		if a.Type.String() != w.oid || a.Value.Tag != w.tag || string(a.Value.Bytes) != w.val {
			t.Errorf("RDN %d: got %s tag %d %q, want %s tag %d %q", i, a.Type, a.Value.Tag, a.Value.Bytes, w.oid, w.tag, w.val)
		}
	}
}

func TestSelfSignZeroNowUsesClock(t *testing.T) {
	f := getFixture(t)
	before := time.Now().Add(-time.Second)
	cert, err := ParseCertificatePEM(certPEMAt(t, f.keyA, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if cert.NotBefore.Before(before) || cert.NotBefore.After(time.Now()) {
		t.Errorf("NotBefore %v is not about now", cert.NotBefore)
	}
}

func TestParseCertificatePEM(t *testing.T) {
	f := getFixture(t)
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	tests := []struct {
		name    string
		in      []byte
		wantErr string // substring; "" means success
		isNoPEM bool
		wantKey *rsa.PrivateKey
	}{
		{name: "plain", in: f.certPEM, wantKey: f.keyA},
		{name: "text and key before the certificate", in: append(append([]byte("# bundle\n"), f.keyPEM...), f.certPEM...), wantKey: f.keyA},
		{name: "first of two", in: append(append([]byte{}, f.certPEM...), f.certBPEM...), wantKey: f.keyA},
		{name: "CRLF and rewrapped", in: rewrap(f.certPEM), wantKey: f.keyA},
		{name: "empty", in: nil, wantErr: "empty", isNoPEM: true},
		{name: "whitespace", in: []byte(" \n\t\n"), wantErr: "empty", isNoPEM: true},
		{name: "garbage", in: []byte("hello world"), wantErr: "-----BEGIN", isNoPEM: true},
		{name: "DER", in: f.certA.Raw, wantErr: "no PEM data", isNoPEM: true},
		{name: "truncated", in: f.certPEM[:len(f.certPEM)/2], wantErr: "truncated", isNoPEM: true},
		{name: "key file given", in: f.keyPEM, wantErr: "swapped"},
		{name: "corrupt DER in block", in: corrupt, wantErr: "certificate:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := ParseCertificatePEM(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if got := errors.Is(err, ErrNoPEM); got != tt.isNoPEM {
					t.Errorf("errors.Is(err, ErrNoPEM) = %v, want %v", got, tt.isNoPEM)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantKey.PublicKey.Equal(cert.PublicKey) {
				t.Error("returned the wrong certificate")
			}
		})
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	f := getFixture(t)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xder, err := x509.MarshalPKCS8PrivateKey(x)
	if err != nil {
		t.Fatal(err)
	}
	x25519 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: xder})
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("nope")})

	tests := []struct {
		name     string
		in       []byte
		wantType string // KeyType of the result
		wantErr  string
		errIs    error
	}{
		{name: "PKCS#1 (omnibus)", in: f.keyPEM, wantType: "RSA 2048"},
		{name: "PKCS#1 CRLF", in: rewrap(f.keyPEM), wantType: "RSA 2048"},
		{name: "PKCS#8 RSA (openssl genpkey)", in: readTestdata(t, "rsa-2048-pkcs8.pem"), wantType: "RSA 2048"},
		{name: "SEC1 EC after EC PARAMETERS", in: readTestdata(t, "ec-p256-sec1.pem"), wantType: "ECDSA P-256"},
		{name: "PKCS#8 EC P-384", in: readTestdata(t, "ec-p384-pkcs8.pem"), wantType: "ECDSA P-384"},
		{name: "PKCS#8 Ed25519", in: readTestdata(t, "ed25519-pkcs8.pem"), wantType: "Ed25519"},
		{name: "1024-bit PKCS#1 parses (Verify judges it)", in: readTestdata(t, "rsa-1024-pkcs1.pem"), wantType: "RSA 1024"},
		{name: "certificate before key", in: append(append([]byte{}, f.certPEM...), f.keyPEM...), wantType: "RSA 2048"},
		{name: "encrypted PKCS#8", in: readTestdata(t, "rsa-2048-encrypted-pkcs8.pem"), errIs: ErrEncryptedKey},
		{name: "encrypted PKCS#1 (Proc-Type)", in: readTestdata(t, "rsa-2048-encrypted-pkcs1.pem"), errIs: ErrEncryptedKey},
		{name: "X25519 cannot sign", in: x25519, wantErr: "not a signing key"},
		{name: "certificate given", in: f.certPEM, wantErr: "swapped"},
		{name: "empty", in: []byte{}, errIs: ErrNoPEM},
		{name: "garbage", in: []byte("-----BEGIN nonsense"), errIs: ErrNoPEM},
		{name: "corrupt PKCS#1", in: corrupt, wantErr: "RSA PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM(tt.in)
			if tt.wantErr != "" || tt.errIs != nil {
				if err == nil {
					t.Fatalf("want error, got %T", k)
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("err = %v, want %v", err, tt.errIs)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := KeyType(k.Public()); got != tt.wantType {
				t.Errorf("KeyType = %q, want %q", got, tt.wantType)
			}
		})
	}
}

func TestPublicKeyOf(t *testing.T) {
	f := getFixture(t)
	ec := mustKey(t, readTestdata(t, "ec-p256-sec1.pem")).(*ecdsa.PrivateKey)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"RSA private", f.keyA, &f.keyA.PublicKey},
		{"RSA public pointer", &f.keyA.PublicKey, &f.keyA.PublicKey},
		{"RSA public value", f.keyA.PublicKey, &f.keyA.PublicKey},
		{"EC private", ec, &ec.PublicKey},
		{"EC public value", ec.PublicKey, &ec.PublicKey},
		{"Ed25519 private", edPriv, edPriv.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := publicKeyOf(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Errorf("got %T, want %T", got, tt.want)
			}
		})
	}
	if _, err := publicKeyOf(nil); err == nil {
		t.Error("nil: want error")
	}
}
