package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// Expected values for the testdata keys were derived outside Go:
//
//	openssl pkey -in KEY -pubout -outform DER        -> SPKI DER
//	python3: base64.b32encode(sha256(der)[:30]), colon every 4 chars
//	python3: RFC 7638 JSON built from the key numbers, sha256, base64url
var keyVectors = []struct {
	file string
	kid  string
	jwk  string // "" = no thumbprint defined here
}{
	{"ec-p256-sec1.pem", "C56Y:BAPY:LXNE:P5R4:S3UV:2RQX:IITI:32BK:2SBO:OQXC:Q2BB:SXJY", "Q_TYBTF-HfzJW-rmF_oSZeR87SdFFIu0OPeTjW8c7Do"},
	{"ec-p384-pkcs8.pem", "R4ZP:F26R:3NV2:33YC:TOGS:C2EK:PPQZ:7BHA:22GE:VH2I:LXKK:3J6W", "dph7R9tuCJ15YJKyPuFoOBV9Fcn3iqbKRO3whDxQs0A"},
	{"rsa-2048-pkcs8.pem", "H3YY:PHA7:MTDB:3E5C:A33M:PC2X:3PZ3:KQ2K:RY5E:RX6F:QADS:QDCR", "2xoEAwnsbpfPXhHZVXAJPlNn0kqve2pi1NWatmRa1LM"},
	{"rsa-1024-pkcs1.pem", "5BIY:JIJ6:GEMC:TAQ2:AGLH:D46M:7GLK:UM7K:GAZZ:SMLG:4DUD:OC67", "MOPjpMoaqg4AR3JsI0oCmsoTOejjKm-pGH3GSUd3rgM"},
	{"ed25519-pkcs8.pem", "BBSG:R3JQ:3AHV:HDTN:CEWN:GN3U:TNSZ:IWDC:YWKM:LSKD:CO6C:AOLG", ""},
}

var kidFormat = regexp.MustCompile(`^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$`)

func TestLibtrustKeyIDVectors(t *testing.T) {
	for _, v := range keyVectors {
		t.Run(v.file, func(t *testing.T) {
			key := mustKey(t, readTestdata(t, v.file))
			for _, in := range []crypto.PublicKey{key.Public(), key} {
				got, err := LibtrustKeyID(in)
				if err != nil {
					t.Fatal(err)
				}
				if got != v.kid {
					t.Errorf("LibtrustKeyID(%T) = %s, want %s", in, got, v.kid)
				}
			}
		})
	}
}

// manualBase32 is RFC 4648 base32 without padding, done bit by bit, so the
// test does not lean on encoding/base32 like the code under test does.
func manualBase32(b []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var out []byte
	var acc uint64
	nbits := 0
	for _, c := range b {
		acc = acc<<8 | uint64(c)
		nbits += 8
		for nbits >= 5 {
			nbits -= 5
			out = append(out, alphabet[(acc>>nbits)&31])
		}
	}
	if nbits > 0 {
		out = append(out, alphabet[(acc<<(5-nbits))&31])
	}
	return string(out)
}

func TestManualBase32(t *testing.T) {
	// RFC 4648 section 10 vectors, padding removed.
	for in, want := range map[string]string{
		"": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ",
		"fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI",
	} {
		if got := manualBase32([]byte(in)); got != want {
			t.Errorf("manualBase32(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLibtrustKeyIDDerivation(t *testing.T) {
	f := getFixture(t)
	ec := mustKey(t, readTestdata(t, "ec-p256-sec1.pem"))
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
	}{
		{"RSA A", f.keyA.Public()},
		{"RSA B", f.keyB.Public()},
		{"EC P-256", ec.Public()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Step by step: SPKI DER -> SHA-256 -> first 240 bits -> base32
			// (240/5 = 48 symbols, so no padding) -> groups of 4.
			der, err := x509.MarshalPKIXPublicKey(tc.pub)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(der)
			b32 := manualBase32(sum[:240/8])
			if len(b32) != 48 {
				t.Fatalf("base32 of 30 bytes has %d chars", len(b32))
			}
			var groups []string
			for i := 0; i < 48; i += 4 {
				groups = append(groups, b32[i:i+4])
			}
			want := strings.Join(groups, ":")

			got, err := LibtrustKeyID(tc.pub)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("got %s, want %s", got, want)
			}
			if len(got) != 59 || strings.Count(got, ":") != 11 || !kidFormat.MatchString(got) {
				t.Errorf("bad format %q", got)
			}
		})
	}
}

func TestLibtrustKeyIDErrors(t *testing.T) {
	for _, in := range []crypto.PublicKey{nil, "not a key", &ecdsa.PublicKey{}} {
		if got, err := LibtrustKeyID(in); err == nil {
			t.Errorf("LibtrustKeyID(%T) = %q, want error", in, got)
		}
	}
}

func TestJWKThumbprint(t *testing.T) {
	// RFC 7638 section 3.1 example key and thumbprint.
	const rfcN = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	nb, err := base64.RawURLEncoding.DecodeString(rfcN)
	if err != nil {
		t.Fatal(err)
	}
	rfcKey := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}

	type tcase struct {
		name string
		pub  crypto.PublicKey
		want string
	}
	tests := []tcase{{"RFC 7638 3.1", rfcKey, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}}
	for _, v := range keyVectors {
		if v.jwk != "" {
			tests = append(tests, tcase{v.file, mustKey(t, readTestdata(t, v.file)).Public(), v.jwk})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JWKThumbprint(tt.pub)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}

	// P-521 coordinates are 66 bytes; a short X must still be padded.
	k521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := k521.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	canon := `{"crv":"P-521","kty":"EC","x":"` + b64(pt[1:67]) + `","y":"` + b64(pt[67:]) + `"}`
	sum := sha256.Sum256([]byte(canon))
	if got, err := JWKThumbprint(&k521.PublicKey); err != nil || got != b64(sum[:]) {
		t.Errorf("P-521: got %q, %v; want %q", got, err, b64(sum[:]))
	}
}

func TestJWKThumbprintErrors(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		pub  crypto.PublicKey
	}{
		{"nil", nil},
		{"P-224", &p224.PublicKey},
		{"Ed25519", edPub},
		{"RSA without modulus", &rsa.PublicKey{E: 65537}},
		{"EC without curve", &ecdsa.PublicKey{}},
	}
	for _, tt := range tests {
		if got, err := JWKThumbprint(tt.pub); err == nil {
			t.Errorf("%s: got %q, want error", tt.name, got)
		}
	}
}

func TestModulusSHA256(t *testing.T) {
	hexSum := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	big2 := func(s string) *big.Int {
		n, _ := new(big.Int).SetString(s, 16)
		return n
	}
	tests := []struct {
		name string
		n    *big.Int
		line string // what openssl would hash
	}{
		{"letters are uppercase", big2("abc"), "Modulus=ABC\n"},
		{"no leading zero nibble", big2("0f0"), "Modulus=F0\n"},
		{"multi-word", big2("10000000000000001"), "Modulus=10000000000000001\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ModulusSHA256(&rsa.PublicKey{N: tt.n, E: 3})
			if err != nil {
				t.Fatal(err)
			}
			if want := hexSum(tt.line); got != want {
				t.Errorf("got %s, want sha256(%q) = %s", got, tt.line, want)
			}
		})
	}

	f := getFixture(t)
	fromPriv, err1 := ModulusSHA256(f.keyA)
	fromPub, err2 := ModulusSHA256(f.certA.PublicKey)
	if err1 != nil || err2 != nil || fromPriv != fromPub || len(fromPub) != 64 {
		t.Errorf("private %q (%v) vs certificate %q (%v)", fromPriv, err1, fromPub, err2)
	}
	ec := mustKey(t, readTestdata(t, "ec-p256-sec1.pem"))
	for _, in := range []crypto.PublicKey{nil, ec.Public(), &rsa.PublicKey{}} {
		if _, err := ModulusSHA256(in); err == nil {
			t.Errorf("ModulusSHA256(%T): want error", in)
		}
	}
}

func TestFingerprintSHA256Format(t *testing.T) {
	f := getFixture(t)
	got := FingerprintSHA256(f.certA)
	sum := sha256.Sum256(f.certA.Raw)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))
	if strings.ReplaceAll(got, ":", "") != want || len(got) != 32*3-1 {
		t.Errorf("got %s, want %s with colons", got, want)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(got) {
		t.Errorf("bad format %q", got)
	}
}

func TestKeyType(t *testing.T) {
	f := getFixture(t)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		in   crypto.PublicKey
		want string
	}{
		{f.keyA, "RSA 2048"},
		{&f.keyB.PublicKey, "RSA 2048"},
		{&ecdsa.PublicKey{Curve: elliptic.P384()}, "ECDSA P-384"},
		{edPub, "Ed25519"},
		{&rsa.PublicKey{}, "RSA (invalid)"},
		{&ecdsa.PublicKey{}, "ECDSA (invalid)"},
		{nil, "none"},
		{42, "int"},
	}
	for _, tt := range tests {
		if got := KeyType(tt.in); got != tt.want {
			t.Errorf("KeyType(%T) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
