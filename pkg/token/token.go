// Package token mints registry tokens the way GitLab does, so that
// automation, break-glass access and tests can talk to a registry that
// trusts GitLab without GitLab itself.
//
// GitLab's tokens are compact JWS (JWT) signed RS256 with the registry's
// internal key. The header is {"alg","kid","typ":"JWT"} where kid is the
// libtrust fingerprint of the public key; there is no x5c. The claims are
// iss, sub, aud (the registry's service, as a string), exp, nbf (5 s before
// iat, against clock skew), iat, jti (a random UUID) and access: a list of
// {type, name, actions}.
//
// The token is assembled by hand rather than through a JWT library: the
// wire format is small, and writing it directly keeps every byte as GitLab
// writes it (aud as a string, access always present).
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"regctl/pkg/certs"
)

const (
	// DefaultTTL is GitLab's default container_registry_token_expire_delay.
	DefaultTTL = 5 * time.Minute
	// Service is the audience omnibus configures: auth.token.service in
	// config.yml and the aud of every token GitLab mints for the registry.
	Service = "container_registry"
	// notBeforeSkew is how far before iat GitLab sets nbf, so a registry
	// whose clock runs slightly behind still accepts a fresh token.
	notBeforeSkew = 5 * time.Second
)

// ResourceActions is one entry of the access claim: the actions granted on
// one resource, e.g. {repository, group/project, [pull push]}.
type ResourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String formats r as a scope: "repository:group/project:pull,push".
func (r ResourceActions) String() string {
	s := r.Type + ":" + r.Name + ":"
	for i, a := range r.Actions {
		if i > 0 {
			s += ","
		}
		s += a
	}
	return s
}

// Claims is the JWT payload as GitLab writes it. The registry side reads
// aud as a string or an array; GitLab writes a string.
type Claims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	ExpiresAt int64             `json:"exp"`
	NotBefore int64             `json:"nbf"`
	IssuedAt  int64             `json:"iat"`
	ID        string            `json:"jti"`
	Access    []ResourceActions `json:"access"`
}

// header is the JOSE header GitLab sends: no x5c, the key named by kid.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// IssueOptions say what a token grants and to whom.
type IssueOptions struct {
	// Issuer is the iss claim: gitlab_rails.registry_issuer, which must
	// equal the registry's auth.token.issuer.
	Issuer string
	// Audience is the aud claim: the registry's auth.token.service
	// (Service when empty).
	Audience string
	// Subject is the sub claim: the user the registry logs as the actor.
	Subject string
	// Access is the access claim. Nil mints a token that grants nothing
	// but a valid login (what GitLab hands out for `docker login`).
	Access []ResourceActions
	// TTL is how long the token is valid; 0 means DefaultTTL.
	TTL time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Issued is a minted token and what it says, for callers that show it.
type Issued struct {
	Token     string
	Algorithm string
	KeyID     string
	ID        string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	Access    []ResourceActions
}

// Issue mints a token signed with key. RSA keys sign RS256, exactly as
// GitLab; ECDSA keys (which GitLab does not use) sign ES256/384/512 by
// curve, so an ECDSA pair can be tested end to end too.
func Issue(key crypto.Signer, opts IssueOptions) (*Issued, error) {
	if key == nil {
		return nil, errors.New("issue token: no signing key")
	}
	if opts.Issuer == "" {
		return nil, errors.New("issue token: the issuer is empty (gitlab_rails.registry_issuer)")
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("issue token: TTL %s is negative", opts.TTL)
	}
	alg, hash, err := algorithmFor(key.Public())
	if err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	kid, err := certs.LibtrustKeyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	jti, err := uuid4()
	if err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	// JWT times are whole seconds; truncating keeps Issued in step with
	// the claims.
	now = now.Truncate(time.Second)
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	aud := opts.Audience
	if aud == "" {
		aud = Service
	}
	access := make([]ResourceActions, 0, len(opts.Access))
	for _, a := range opts.Access {
		if a.Actions == nil {
			// GitLab writes "actions": [] for a resource it grants
			// nothing on; null would trip strict readers.
			a.Actions = []string{}
		}
		access = append(access, a)
	}
	c := Claims{
		Issuer:    opts.Issuer,
		Subject:   opts.Subject,
		Audience:  aud,
		ExpiresAt: now.Add(ttl).Unix(),
		NotBefore: now.Add(-notBeforeSkew).Unix(),
		IssuedAt:  now.Unix(),
		ID:        jti,
		Access:    access,
	}
	h, err := json.Marshal(header{Alg: alg, Kid: kid, Typ: "JWT"})
	if err != nil {
		return nil, err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	signingInput := b64(h) + "." + b64(p)
	sig, err := sign(key, hash, []byte(signingInput))
	if err != nil {
		return nil, fmt.Errorf("issue token: sign: %w", err)
	}
	return &Issued{
		Token:     signingInput + "." + b64(sig),
		Algorithm: alg,
		KeyID:     kid,
		ID:        jti,
		IssuedAt:  now,
		NotBefore: time.Unix(c.NotBefore, 0),
		ExpiresAt: time.Unix(c.ExpiresAt, 0),
		Access:    access,
	}, nil
}

// algorithmFor picks the JWS algorithm for a public key.
func algorithmFor(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", crypto.SHA256, nil
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return "ES256", crypto.SHA256, nil
		case "P-384":
			return "ES384", crypto.SHA384, nil
		case "P-521":
			return "ES512", crypto.SHA512, nil
		}
		return "", 0, fmt.Errorf("ECDSA curve %s cannot sign JWTs (want P-256, P-384 or P-521)", k.Curve.Params().Name)
	}
	return "", 0, fmt.Errorf("%s keys cannot sign registry tokens (want RSA, as GitLab uses)", certs.KeyType(pub))
}

// sign signs through crypto.Signer, so a key held elsewhere (an HSM, an
// agent) works as well as one in memory.
func sign(key crypto.Signer, hash crypto.Hash, input []byte) ([]byte, error) {
	var digest []byte
	switch hash {
	case crypto.SHA256:
		s := sha256.Sum256(input)
		digest = s[:]
	case crypto.SHA384:
		s := sha512.Sum384(input)
		digest = s[:]
	case crypto.SHA512:
		s := sha512.Sum512(input)
		digest = s[:]
	default:
		return nil, fmt.Errorf("unsupported hash %v", hash)
	}
	sig, err := key.Sign(rand.Reader, digest, hash)
	if err != nil {
		return nil, err
	}
	ec, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return sig, nil // RSA PKCS#1 v1.5: already what JWS wants
	}
	// crypto.Signer gives ECDSA signatures as ASN.1; JWS wants R||S, each
	// left-padded to the curve's size (RFC 7518 section 3.4).
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, fmt.Errorf("decode ECDSA signature: %w", err)
	}
	size := (ec.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// uuid4 makes a random RFC 4122 version 4 UUID, the form of GitLab's jti
// (Ruby's SecureRandom.uuid).
func uuid4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
