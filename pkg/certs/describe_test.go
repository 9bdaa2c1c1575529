package certs

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	f := getFixture(t)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ec := mustKey(t, readTestdata(t, "ec-p256-sec1.pem"))
	subject := "C=USA, O=GitLab, OU=Container, CN=Registry"
	nb := t0.UTC().Truncate(time.Second)

	tests := []struct {
		name        string
		key         crypto.Signer
		keyType     string
		wantJWK     bool
		wantModulus bool
	}{
		{"RSA", f.keyA, "RSA 2048", true, true},
		{"ECDSA P-256", ec, "ECDSA P-256", true, false},
		{"Ed25519", edPriv, "Ed25519", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := ParseCertificatePEM(certPEMAt(t, tt.key, t0))
			if err != nil {
				t.Fatal(err)
			}
			info, err := Describe(cert)
			if err != nil {
				t.Fatal(err)
			}
			kid, _ := LibtrustKeyID(tt.key.Public())
			checks := []struct {
				what      string
				got, want any
			}{
				{"Subject", info.Subject, subject},
				{"Issuer", info.Issuer, subject},
				{"NotBefore", info.NotBefore, nb},
				{"NotAfter", info.NotAfter, nb.Add(3650 * 24 * time.Hour)},
				{"Serial", info.Serial, "00"},
				{"SHA256Fingerprint", info.SHA256Fingerprint, FingerprintSHA256(cert)},
				{"KeyType", info.KeyType, tt.keyType},
				{"KeyID", info.KeyID, kid},
				{"has JWKThumbprint", info.JWKThumbprint != "", tt.wantJWK},
				{"has ModulusSHA256", info.ModulusSHA256 != "", tt.wantModulus},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
	if _, err := Describe(nil); err == nil {
		t.Error("Describe(nil): want error")
	}
}

func TestFormatName(t *testing.T) {
	tests := []struct {
		name string
		in   pkix.Name
		want string
	}{
		{"empty", pkix.Name{}, ""},
		{"order kept", pkix.Name{Names: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "x"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "DE"},
		}}, "CN=x, C=DE"},
		{"unknown oid as dotted", pkix.Name{Names: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: "v"},
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@b"},
		}}, "1.2.3=v, emailAddress=a@b"},
	}
	for _, tt := range tests {
		if got := FormatName(tt.in); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFormatSerial(t *testing.T) {
	f := getFixture(t)
	c := *f.certA
	for _, tt := range []struct {
		serial int64
		want   string
	}{{0, "00"}, {1, "01"}, {255, "FF"}, {256, "0100"}, {-5, "-05"}} {
		c.SerialNumber = big.NewInt(tt.serial)
		if got := formatSerial(&c); got != tt.want {
			t.Errorf("serial %d: got %q, want %q", tt.serial, got, tt.want)
		}
	}
	if got := formatSerial(&x509.Certificate{}); got != "" {
		t.Errorf("nil serial: got %q", got)
	}
}
