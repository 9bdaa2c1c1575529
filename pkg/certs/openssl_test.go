package certs

import (
	"crypto/x509"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests hold the package to what the real openssl CLI prints, since
// users compare regctl's output with openssl commands from the docs.

func TestOpenSSLModulusSHA256(t *testing.T) {
	bin := openssl(t)
	f := getFixture(t)
	tests := []struct {
		name string
		pem  []byte
		cmd  string // openssl subcommand that reads the file
	}{
		{"generated certificate", f.certPEM, "x509"},
		{"generated key (PKCS#1)", f.keyPEM, "rsa"},
		{"second key", f.keyBPEM, "rsa"},
		{"openssl PKCS#8 key", readTestdata(t, "rsa-2048-pkcs8.pem"), "rsa"},
		{"openssl 1024-bit key", readTestdata(t, "rsa-1024-pkcs1.pem"), "rsa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "in.pem", tt.pem)
			mod := runOpenSSL(t, bin, nil, tt.cmd, "-noout", "-modulus", "-in", path)
			if !strings.HasPrefix(mod, "Modulus=") {
				t.Fatalf("unexpected openssl output %q", mod)
			}
			want := opensslDigest(t, runOpenSSL(t, bin, []byte(mod), "sha256"))

			var got string
			var err error
			if tt.cmd == "x509" {
				var c *x509.Certificate
				if c, err = ParseCertificatePEM(tt.pem); err == nil {
					got, err = ModulusSHA256(c.PublicKey)
				}
			} else {
				got, err = ModulusSHA256(mustKey(t, tt.pem))
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("ModulusSHA256 = %s, openssl = %s", got, want)
			}
		})
	}
}

func TestOpenSSLGeneratedPair(t *testing.T) {
	bin := openssl(t)
	f := getFixture(t)
	cp, kp := writeTemp(t, "c.pem", f.certPEM), writeTemp(t, "k.pem", f.keyPEM)
	info, err := Describe(f.certA)
	if err != nil {
		t.Fatal(err)
	}
	// OpenSSL 3 prints "C = USA, O = GitLab, ..."; drop the spaces around "=".
	name := func(out, prefix string) string {
		out = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), prefix))
		return strings.ReplaceAll(out, " = ", "=")
	}
	after := func(out string) string { // value after the first "="
		_, v, _ := strings.Cut(strings.TrimSpace(out), "=")
		return v
	}
	const omnibus = "C=USA, O=GitLab, OU=Container, CN=Registry"

	t.Run("subject and issuer", func(t *testing.T) {
		subj := name(runOpenSSL(t, bin, nil, "x509", "-noout", "-subject", "-in", cp), "subject=")
		iss := name(runOpenSSL(t, bin, nil, "x509", "-noout", "-issuer", "-in", cp), "issuer=")
		for what, got := range map[string]string{"subject": subj, "issuer": iss} {
			if got != omnibus {
				t.Errorf("openssl %s = %q, want %q", what, got, omnibus)
			}
		}
		if info.Subject != subj || info.Issuer != iss {
			t.Errorf("Describe subject/issuer %q/%q, openssl %q/%q", info.Subject, info.Issuer, subj, iss)
		}
		compat := strings.TrimSpace(runOpenSSL(t, bin, nil, "x509", "-noout", "-subject", "-nameopt", "compat", "-in", cp))
		if compat != "subject=/C=USA/O=GitLab/OU=Container/CN=Registry" {
			t.Errorf("compat subject %q", compat)
		}
	})
	t.Run("serial, version, signature", func(t *testing.T) {
		if got := after(runOpenSSL(t, bin, nil, "x509", "-noout", "-serial", "-in", cp)); got != info.Serial || got != "00" {
			t.Errorf("openssl serial %q, Describe %q, want 00", got, info.Serial)
		}
		text := runOpenSSL(t, bin, nil, "x509", "-noout", "-text", "-in", cp)
		for _, want := range []string{"Version: 3 (0x2)", "Serial Number: 0 (0x0)", "Signature Algorithm: sha256WithRSAEncryption", "Public-Key: (2048 bit)"} {
			if !strings.Contains(text, want) {
				t.Errorf("openssl -text lacks %q", want)
			}
		}
		if strings.Contains(text, "X509v3 extensions") {
			t.Error("certificate has extensions; omnibus' has none")
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		got := after(runOpenSSL(t, bin, nil, "x509", "-noout", "-fingerprint", "-sha256", "-in", cp))
		if got != info.SHA256Fingerprint {
			t.Errorf("openssl %s, Describe %s", got, info.SHA256Fingerprint)
		}
	})
	t.Run("dates", func(t *testing.T) {
		const layout = "Jan _2 15:04:05 2006 MST"
		for flag, want := range map[string]time.Time{"-startdate": info.NotBefore, "-enddate": info.NotAfter} {
			got, err := time.Parse(layout, after(runOpenSSL(t, bin, nil, "x509", "-noout", flag, "-in", cp)))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Errorf("%s: openssl %v, Describe %v", flag, got, want)
			}
		}
	})
	t.Run("rsa -check", func(t *testing.T) {
		if out := runOpenSSL(t, bin, nil, "rsa", "-check", "-noout", "-in", kp); !strings.Contains(out, "RSA key ok") {
			t.Errorf("openssl rsa -check: %q", out)
		}
	})
	t.Run("self-signature", func(t *testing.T) {
		// openssl verify trusts the certificate as its own anchor; a bad
		// signature or unreadable encoding fails here.
		out := runOpenSSL(t, bin, nil, "verify", "-CAfile", cp, "-check_ss_sig", cp)
		if !regexp.MustCompile(`: OK\s*$`).MatchString(out) {
			t.Errorf("openssl verify: %q", out)
		}
	})
	t.Run("SPKI DER behind the key id", func(t *testing.T) {
		der := runOpenSSL(t, bin, nil, "pkey", "-in", kp, "-pubout", "-outform", "DER")
		want, _ := x509.MarshalPKIXPublicKey(f.certA.PublicKey)
		if der != string(want) {
			t.Error("openssl's SubjectPublicKeyInfo differs from the one LibtrustKeyID hashes")
		}
	})
}
