package certs

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Info is what `regctl certs` shows about a certificate. Every value is in a
// form a user can compare with other tools: openssl output, the JWT `kid`,
// Distribution v3's thumbprints.
type Info struct {
	// Subject and Issuer in OpenSSL's order, e.g.
	// "C=USA, O=GitLab, OU=Container, CN=Registry".
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`

	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`

	// Serial as `openssl x509 -serial` prints it: uppercase hex, "00" for 0.
	Serial string `json:"serial"`
	// SHA256Fingerprint as `openssl x509 -fingerprint -sha256`: AB:CD:...
	SHA256Fingerprint string `json:"sha256_fingerprint"`
	// KeyType is e.g. "RSA 4096" or "ECDSA P-256".
	KeyType string `json:"key_type"`
	// KeyID is the libtrust fingerprint GitLab sends as the token `kid`.
	KeyID string `json:"key_id"`
	// JWKThumbprint is the RFC 7638 SHA-256 thumbprint; empty for key types
	// it is not defined for here.
	JWKThumbprint string `json:"jwk_thumbprint,omitempty"`
	// ModulusSHA256 matches `openssl x509 -noout -modulus | openssl sha256`;
	// empty for non-RSA keys.
	ModulusSHA256 string `json:"modulus_sha256,omitempty"`
}

// Describe summarises cert. It fails only when there is no certificate or
// its public key cannot be encoded; values that do not apply to the key type
// (the modulus of an EC key) are left empty.
func Describe(cert *x509.Certificate) (Info, error) {
	if cert == nil {
		return Info{}, errors.New("describe: no certificate")
	}
	kid, err := LibtrustKeyID(cert.PublicKey)
	if err != nil {
		return Info{}, fmt.Errorf("describe: %w", err)
	}
	info := Info{
		Subject:           FormatName(cert.Subject),
		Issuer:            FormatName(cert.Issuer),
		NotBefore:         cert.NotBefore.UTC(),
		NotAfter:          cert.NotAfter.UTC(),
		Serial:            formatSerial(cert),
		SHA256Fingerprint: FingerprintSHA256(cert),
		KeyType:           KeyType(cert.PublicKey),
		KeyID:             kid,
	}
	// Not every key type has these; absence is not an error.
	if tp, err := JWKThumbprint(cert.PublicKey); err == nil {
		info.JWKThumbprint = tp
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); ok {
		if m, err := ModulusSHA256(cert.PublicKey); err == nil {
			info.ModulusSHA256 = m
		}
	}
	return info, nil
}

// formatSerial mirrors OpenSSL's i2a_ASN1_INTEGER: the magnitude in
// uppercase hex pairs, "00" when zero (the omnibus serial).
func formatSerial(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	mag := cert.SerialNumber.Bytes()
	if len(mag) == 0 {
		return "00"
	}
	s := strings.ToUpper(hex.EncodeToString(mag))
	if cert.SerialNumber.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// shortNames are OpenSSL's short names for the usual attributes.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.17":                   "postalCode",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
}

// FormatName prints a name in certificate order, "C=USA, O=GitLab, ...",
// as OpenSSL does (without its spaces around "="), rather than pkix.Name's
// reversed RFC 2253 form, so it reads like the omnibus subject.
func FormatName(n pkix.Name) string {
	parts := make([]string, 0, len(n.Names))
	for _, atv := range n.Names {
		key, ok := shortNames[atv.Type.String()]
		if !ok {
			key = atv.Type.String()
		}
		parts = append(parts, fmt.Sprintf("%s=%v", key, atv.Value))
	}
	return strings.Join(parts, ", ")
}
