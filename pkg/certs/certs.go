// Package certs makes, reads and checks the key pair that GitLab and the
// registry share for token auth: GitLab signs registry JWTs with the private
// key (gitlab.yml registry.key) and the registry trusts the self-signed
// certificate named by auth.token.rootcertbundle in config.yml.
//
// The pair is made the way omnibus-gitlab makes it, so a pair generated here
// and one carried over from an omnibus install look alike to both sides.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

const (
	// DefaultBits is the RSA size omnibus uses for the registry key.
	DefaultBits = 4096
	// MinRSABits is the smallest RSA key regctl makes or accepts.
	MinRSABits = 2048
	// ValidityDays mirrors omnibus, which adds 365*10 days (not ten calendar
	// years) to the current time.
	ValidityDays = 365 * 10
)

// PEM block types. PKCS#1 is what omnibus (Ruby's RSA#to_pem) writes, so that
// is what GenerateKeyPair writes too.
const (
	pemCertificate = "CERTIFICATE"
	pemRSAKey      = "RSA PRIVATE KEY"
	pemPKCS8Key    = "PRIVATE KEY"
	pemECKey       = "EC PRIVATE KEY"
	pemEncrypted   = "ENCRYPTED PRIVATE KEY"
	pemECParams    = "EC PARAMETERS"
)

// Errors callers may want to match to print a hint.
var (
	// ErrNoPEM means the input held no PEM block at all (empty, DER, or
	// some other file).
	ErrNoPEM = errors.New("no PEM data found")
	// ErrEncryptedKey means the key is passphrase-protected; neither GitLab
	// nor the registry can prompt for a passphrase.
	ErrEncryptedKey = errors.New("private key is encrypted; GitLab needs an unencrypted key")
)

// Oids of the subject attributes omnibus sets.
var (
	oidCountry            = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCommonName         = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// omnibusSubject returns the DER of /C=USA/O=GitLab/OU=Container/CN=Registry
// encoded as Ruby's OpenSSL::X509::Name.parse encodes it: the country as a
// PrintableString, the rest as UTF8String. We build the RDNSequence by hand
// (instead of pkix.Name) so the order and string types are fixed and not
// whatever pkix.Name happens to pick. Note the three-letter country: the
// OpenSSL CLI refuses it, but it is what omnibus writes, and X.509 parsers
// (Go's, OpenSSL's) read it fine.
func omnibusSubject() ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, tag int, v string) []pkix.AttributeTypeAndValue {
		return []pkix.AttributeTypeAndValue{{
			Type:  oid,
			Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(v)},
		}}
	}
	rdn := pkix.RDNSequence{
		attr(oidCountry, asn1.TagPrintableString, "USA"),
		attr(oidOrganization, asn1.TagUTF8String, "GitLab"),
		attr(oidOrganizationalUnit, asn1.TagUTF8String, "Container"),
		attr(oidCommonName, asn1.TagUTF8String, "Registry"),
	}
	return asn1.Marshal(rdn)
}

// GenerateKeyPair makes a new RSA 4096 key and a self-signed certificate for
// it, as omnibus does: subject = issuer = /C=USA/O=GitLab/OU=Container/CN=Registry,
// serial 0, valid from now for 3650 days, signed SHA256WithRSA, no
// extensions. keyPEM is PKCS#1 ("RSA PRIVATE KEY"). A zero now means
// time.Now().
func GenerateKeyPair(now time.Time) (keyPEM, certPEM []byte, err error) {
	return GenerateKeyPairBits(DefaultBits, now)
}

// GenerateKeyPairBits is GenerateKeyPair with a chosen RSA size (at least
// MinRSABits). It exists mainly so tests can use fast 2048-bit keys.
func GenerateKeyPairBits(bits int, now time.Time) (keyPEM, certPEM []byte, err error) {
	if bits < MinRSABits {
		return nil, nil, fmt.Errorf("RSA key size %d is below the minimum of %d bits", bits, MinRSABits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate RSA %d key: %w", bits, err)
	}
	der, err := selfSign(key, now)
	if err != nil {
		return nil, nil, err
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: pemRSAKey, Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
	return keyPEM, certPEM, nil
}

// selfSign makes the omnibus-style certificate for any signer. It is split
// from key generation so tests can sign many certificates (expired, not yet
// valid, ...) with one pre-made key.
func selfSign(key crypto.Signer, now time.Time) ([]byte, error) {
	if now.IsZero() {
		now = time.Now()
	}
	// X.509 times have one-second resolution; truncating keeps NotBefore
	// from lying by a fraction of a second into the future.
	notBefore := now.UTC().Truncate(time.Second)
	subject, err := omnibusSubject()
	if err != nil {
		return nil, fmt.Errorf("encode certificate subject: %w", err)
	}
	tmpl := &x509.Certificate{
		// Serial 0 is what omnibus writes. RFC 5280 asks for a positive
		// serial, but Go only refuses negative ones when creating and
		// parsing, and OpenSSL accepts 0 too.
		SerialNumber: big.NewInt(0),
		RawSubject:   subject,
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(ValidityDays * 24 * time.Hour),
	}
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	}
	// Parent == template makes it self-signed: issuer = subject.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create self-signed certificate: %w", err)
	}
	return der, nil
}

// ParseCertificatePEM returns the first CERTIFICATE block of b, skipping any
// text or other blocks before it (a bundle may carry comments).
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	blocks, err := pemBlocks(b)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	var seen []string
	for _, blk := range blocks {
		if blk.Type != pemCertificate {
			seen = append(seen, blk.Type)
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		return cert, nil
	}
	hint := ""
	if containsKeyType(seen) {
		hint = " (this looks like a private key: are the certificate and key paths swapped?)"
	}
	return nil, fmt.Errorf("certificate: no CERTIFICATE block, found %s%s", strings.Join(quoteAll(seen), ", "), hint)
}

// ParsePrivateKeyPEM returns the first private key in b: PKCS#1
// ("RSA PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// An "EC PARAMETERS" block, as `openssl ecparam -genkey` writes first, is
// skipped.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	blocks, err := pemBlocks(b)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	var seen []string
	for _, blk := range blocks {
		switch blk.Type {
		case pemECParams:
			continue
		case pemEncrypted:
			return nil, ErrEncryptedKey
		case pemRSAKey, pemECKey, pemPKCS8Key:
		default:
			seen = append(seen, blk.Type)
			continue
		}
		// Legacy OpenSSL encryption keeps the block type and adds headers.
		if strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, ErrEncryptedKey
		}
		key, err := parseKeyBlock(blk)
		if err != nil {
			return nil, fmt.Errorf("private key (%s): %w", blk.Type, err)
		}
		return key, nil
	}
	hint := ""
	for _, s := range seen {
		if s == pemCertificate {
			hint = " (this looks like a certificate: are the certificate and key paths swapped?)"
		}
	}
	return nil, fmt.Errorf("private key: no private key block, found %s%s", strings.Join(quoteAll(seen), ", "), hint)
}

func parseKeyBlock(blk *pem.Block) (crypto.Signer, error) {
	switch blk.Type {
	case pemRSAKey:
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	case pemECKey:
		return x509.ParseECPrivateKey(blk.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	// PKCS#8 may also hold X25519 keys, which cannot sign tokens.
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	return s, nil
}

// pemBlocks decodes every PEM block in b, with errors that say what was
// wrong rather than just "no block".
func pemBlocks(b []byte) ([]*pem.Block, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: input is empty", ErrNoPEM)
	}
	var out []*pem.Block
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		out = append(out, blk)
	}
	if len(out) > 0 {
		return out, nil
	}
	if bytes.Contains(b, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: a PEM header is present but the block is malformed or truncated", ErrNoPEM)
	}
	return nil, fmt.Errorf("%w: expected text starting with \"-----BEGIN ...-----\"", ErrNoPEM)
}

func containsKeyType(types []string) bool {
	for _, t := range types {
		if strings.HasSuffix(t, "PRIVATE KEY") {
			return true
		}
	}
	return false
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// publicKeyOf accepts a public key, a private key (anything with Public()),
// or an RSA/ECDSA public key by value, so callers need not care which they
// hold.
func publicKeyOf(k any) (crypto.PublicKey, error) {
	switch v := k.(type) {
	case nil:
		return nil, errors.New("no key given")
	case rsa.PublicKey:
		return &v, nil
	case ecdsa.PublicKey:
		return &v, nil
	case crypto.Signer:
		return v.Public(), nil
	}
	return k, nil
}
