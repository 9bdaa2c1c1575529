package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// LibtrustKeyID returns the docker/libtrust fingerprint of pub, which GitLab
// puts in the `kid` header of registry tokens and Distribution (v2) uses to
// find the trusted key: SHA-256 of the DER SubjectPublicKeyInfo, first 240
// bits, base32 (standard alphabet, no padding: 30 bytes are exactly 48
// characters), a colon after every 4 characters.
func LibtrustKeyID(pub crypto.PublicKey) (string, error) {
	pk, err := publicKeyOf(pub)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("libtrust key id: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:30])
	var b strings.Builder
	for i := 0; i < len(enc); i += 4 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(enc[i : i+4])
	}
	return b.String(), nil
}

// JWKThumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url
// without padding. CNCF Distribution v3 names trusted keys by this instead of
// the libtrust id, so a registry that wants to accept GitLab's tokens and
// Distribution-style ones needs both. RSA and ECDSA P-256/P-384/P-521 only.
func JWKThumbprint(pub crypto.PublicKey) (string, error) {
	pk, err := publicKeyOf(pub)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var canon string
	// RFC 7638 fixes the JSON: only the required members, sorted by name,
	// no whitespace. All values here are base64url, so no escaping is needed
	// and building the string by hand is exact.
	switch k := pk.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.E <= 0 {
			return "", errors.New("jwk thumbprint: invalid RSA public key")
		}
		e := big.NewInt(int64(k.E)).Bytes()
		canon = `{"e":"` + b64(e) + `","kty":"RSA","n":"` + b64(k.N.Bytes()) + `"}`
	case *ecdsa.PublicKey:
		crv, size, err := jwkCurve(k)
		if err != nil {
			return "", err
		}
		pt, err := k.Bytes() // 0x04 || X || Y, each padded to the field size
		if err != nil {
			return "", fmt.Errorf("jwk thumbprint: %w", err)
		}
		if len(pt) != 1+2*size {
			return "", fmt.Errorf("jwk thumbprint: unexpected %s point length %d", crv, len(pt))
		}
		x, y := pt[1:1+size], pt[1+size:]
		canon = `{"crv":"` + crv + `","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`
	default:
		return "", fmt.Errorf("jwk thumbprint: unsupported key type %T (want RSA or ECDSA)", pk)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:]), nil
}

// jwkCurve maps a curve to its JWK name and coordinate size in bytes.
func jwkCurve(k *ecdsa.PublicKey) (string, int, error) {
	if k.Curve == nil {
		return "", 0, errors.New("jwk thumbprint: ECDSA key has no curve")
	}
	switch name := k.Curve.Params().Name; name {
	case "P-256":
		return name, 32, nil
	case "P-384":
		return name, 48, nil
	case "P-521":
		return name, 66, nil
	default:
		return "", 0, fmt.Errorf("jwk thumbprint: unsupported curve %s", name)
	}
}

// ModulusSHA256 returns what
//
//	openssl x509 -noout -modulus -in CERT | openssl sha256
//	openssl rsa  -noout -modulus -in KEY  | openssl sha256
//
// print after "= ": the lowercase hex SHA-256 of the line
// "Modulus=<uppercase hex>\n". This is the usual way to check by hand that a
// certificate and key belong together, so regctl shows the same value.
func ModulusSHA256(pub crypto.PublicKey) (string, error) {
	pk, err := publicKeyOf(pub)
	if err != nil {
		return "", err
	}
	k, ok := pk.(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("modulus: %T is not an RSA key", pk)
	}
	if k.N == nil {
		return "", errors.New("modulus: RSA key has no modulus")
	}
	// OpenSSL prints the modulus with BN_print: uppercase hex, no leading
	// zeros, which is exactly big.Int's base-16 text upper-cased.
	line := "Modulus=" + strings.ToUpper(k.N.Text(16)) + "\n"
	sum := sha256.Sum256([]byte(line))
	return hex.EncodeToString(sum[:]), nil
}

// FingerprintSHA256 returns the certificate's SHA-256 fingerprint as
// `openssl x509 -noout -fingerprint -sha256` prints it: uppercase hex pairs
// joined by colons.
func FingerprintSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return colonHex(sum[:])
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// KeyType names a key for humans: "RSA 4096", "ECDSA P-256", "Ed25519".
func KeyType(pub crypto.PublicKey) string {
	pk, err := publicKeyOf(pub)
	if err != nil {
		return "none"
	}
	switch k := pk.(type) {
	case *rsa.PublicKey:
		if k.N == nil {
			return "RSA (invalid)"
		}
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return "ECDSA (invalid)"
		}
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pk)
	}
}
