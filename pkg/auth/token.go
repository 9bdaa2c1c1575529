package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"regctl/pkg/certs"
	"regctl/pkg/token"
)

// Leeway is the clock skew allowed on exp and nbf, as in Distribution.
const Leeway = 60 * time.Second

// DefaultAutoRedirectPath is the realm path Distribution uses with
// autoredirect.
const DefaultAutoRedirectPath = "/auth/token"

// maxX5C bounds the certificates a token may carry; real chains are 1-3.
const maxX5C = 10

// algorithms are the JWS algorithms accepted. Everything else is refused
// before any key is looked up: "none", and HS* above all, since an HMAC
// "keyed" with the public key (which anyone can read) would verify.
var algorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
}

// TokenOptions configure token auth: config.yml's auth.token.
type TokenOptions struct {
	Realm          string // where clients fetch tokens (GitLab's /jwt/auth)
	Service        string // required in aud; "container_registry" for GitLab
	Issuer         string // required as iss; gitlab_rails.registry_issuer
	RootCertBundle string // PEM file of the certificates whose keys sign tokens
	// AutoRedirect builds the realm from the request's Host (and
	// X-Forwarded-Proto, else https) and AutoRedirectPath, as Distribution.
	AutoRedirect     bool
	AutoRedirectPath string // default DefaultAutoRedirectPath
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// TokenController checks bearer tokens. It is immutable after NewToken
// (but for its cache of verified tokens) and safe for concurrent use.
type TokenController struct {
	opts TokenOptions
	// certs are the bundle's certificates with a usable key, in file order.
	certs []*x509.Certificate
	roots *x509.CertPool
	// keys finds a trusted key by either of its names: the libtrust
	// fingerprint GitLab puts in kid, and the RFC 7638 thumbprint
	// Distribution v3 uses. The two forms cannot collide (colons and
	// base32 against 43 base64url characters), so one map holds both.
	keys map[string]crypto.PublicKey
	kids []string
	// verified skips the signature check of a token seen moments ago.
	verified *verifiedCache
}

var _ Controller = (*TokenController)(nil)

// NewToken loads the trusted certificates. Every problem is one line
// naming the config key, since it stops the daemon's startup.
func NewToken(opts TokenOptions) (*TokenController, error) {
	for _, req := range [][2]string{
		{"realm", opts.Realm}, {"service", opts.Service},
		{"issuer", opts.Issuer}, {"rootcertbundle", opts.RootCertBundle},
	} {
		if req[1] == "" {
			return nil, fmt.Errorf("auth.token.%s: must be set", req[0])
		}
	}
	if opts.AutoRedirectPath == "" {
		opts.AutoRedirectPath = DefaultAutoRedirectPath
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	list, err := loadBundle(opts.RootCertBundle)
	if err != nil {
		return nil, fmt.Errorf("auth.token.rootcertbundle: %w", err)
	}
	c := &TokenController{opts: opts, roots: x509.NewCertPool(), keys: map[string]crypto.PublicKey{}, verified: &verifiedCache{}}
	for _, cert := range list {
		kid, err := certs.LibtrustKeyID(cert.PublicKey)
		if err != nil {
			continue
		}
		thumb, err := certs.JWKThumbprint(cert.PublicKey)
		if err != nil {
			// Only RSA and ECDSA keys sign the algorithms accepted; other
			// certificates in a shared bundle are not an error.
			continue
		}
		c.certs = append(c.certs, cert)
		c.roots.AddCert(cert)
		if _, seen := c.keys[kid]; !seen {
			c.kids = append(c.kids, kid)
		}
		c.keys[kid] = cert.PublicKey
		c.keys[thumb] = cert.PublicKey
	}
	if len(c.certs) == 0 {
		return nil, fmt.Errorf("auth.token.rootcertbundle: %s holds no certificate with an RSA or ECDSA key", opts.RootCertBundle)
	}
	return c, nil
}

// KeyIDs are the libtrust key ids trusted, one per distinct key, for the
// startup log: they are what GitLab's tokens carry in kid.
func (c *TokenController) KeyIDs() []string { return slices.Clone(c.kids) }

// loadBundle reads every certificate of a PEM bundle.
func loadBundle(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *PathError: "open PATH: no such file or directory"
	}
	var out []*x509.Certificate
	var others []string
	rest := b
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			others = append(others, fmt.Sprintf("%q", blk.Type))
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d: %w", path, n, err)
		}
		out = append(out, cert)
	}
	if len(out) > 0 {
		return out, nil
	}
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return nil, fmt.Errorf("%s is empty: want the PEM certificate GitLab's key belongs to", path)
	case len(others) > 0:
		hint := ""
		if strings.Contains(strings.Join(others, ""), "PRIVATE KEY") {
			hint = " (a private key: are the certificate and key paths swapped?)"
		}
		return nil, fmt.Errorf("%s holds no certificate, only %s%s", path, strings.Join(others, ", "), hint)
	}
	return nil, fmt.Errorf("%s holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)", path)
}

// tokenClaims is what the registry reads from a token; aud may be a string
// or an array.
type tokenClaims struct {
	jwt.RegisteredClaims
	Access []token.ResourceActions `json:"access"`
}

// Authorize implements Controller.
func (c *TokenController) Authorize(r *http.Request, need []Access) (*Grant, error) {
	raw, ok := bearer(r)
	if !ok {
		return nil, c.refuse(r, need, "", CodeUnauthorized, "authentication required", ErrNoCredentials)
	}
	claims, err := c.verify(raw)
	if err != nil {
		return nil, c.refuse(r, need, "invalid_token", CodeUnauthorized,
			"authentication required: invalid token: "+err.Error(), fmt.Errorf("%w: %w", ErrInvalidToken, err))
	}
	if missing := missingAccess(claims.Access, need); len(missing) > 0 {
		return nil, c.refuse(r, need, "insufficient_scope", CodeDenied,
			"requested access to the resource is denied",
			fmt.Errorf("%w: token for %q lacks %s", ErrInsufficientScope, claims.Subject, scopeOf(missing)))
	}
	return &Grant{Subject: claims.Subject, Access: claims.Access}, nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	return tok, true
}

func (c *TokenController) refuse(r *http.Request, need []Access, why, code, msg string, err error) *Error {
	return &Error{
		Status:  http.StatusUnauthorized,
		Code:    code,
		Message: msg,
		Challenge: Challenge{
			Scheme: "Bearer", Realm: c.realm(r), Service: c.opts.Service,
			Scope: scopeOf(need), Error: why,
		},
		Need: need,
		Err:  err,
	}
}

func (c *TokenController) realm(r *http.Request) string {
	if !c.opts.AutoRedirect {
		return c.opts.Realm
	}
	scheme := "https"
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: c.opts.AutoRedirectPath}).String()
}

// verify checks the signature and the claims, returning a short reason on
// failure (it ends up in the client's error message).
func (c *TokenController) verify(raw string) (*tokenClaims, error) {
	now := c.opts.Now()
	if claims, ok := c.verified.get(raw, now); ok {
		return claims, nil
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithLeeway(Leeway),
		jwt.WithIssuer(c.opts.Issuer),
		jwt.WithAudience(c.opts.Service),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	// The algorithm is checked before the library parses anything, so
	// none and HS* are refused by name, with no key ever involved.
	if alg, err := peekAlg(raw); err != nil {
		return nil, err
	} else if !slices.Contains(algorithms, alg) {
		return nil, fmt.Errorf("algorithm %q is not accepted (RS256/384/512, PS256/384/512, ES256/384/512)", alg)
	}
	claims := &tokenClaims{}
	_, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		k, err := c.signingKey(t, now)
		if err != nil {
			return nil, &keyError{err}
		}
		return k, nil
	})
	if err != nil {
		return nil, reason(err, c.opts)
	}
	c.verified.put(raw, claims, now)
	return claims, nil
}

// peekAlg reads the alg of a compact JWS header.
func peekAlg(raw string) (string, error) {
	seg, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", errors.New("malformed token (not a JWS)")
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return "", errors.New("malformed token (header is not base64url)")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", errors.New("malformed token (header is not JSON)")
	}
	return h.Alg, nil
}

// keyError marks a failure to find a trusted key, whose message is the
// reason to show.
type keyError struct{ err error }

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// signingKey finds the trusted key the token names, in one of three ways:
// an x5c chain (which wins when present, as in Distribution), or a kid
// that is either GitLab's libtrust fingerprint or an RFC 7638 thumbprint.
func (c *TokenController) signingKey(t *jwt.Token, now time.Time) (any, error) {
	alg := t.Method.Alg()
	// The parser already refused other algorithms; checked again here so
	// no key is ever handed out for one.
	if !slices.Contains(algorithms, alg) {
		return nil, fmt.Errorf("algorithm %s is not accepted", alg)
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515: extensions a verifier does not understand are fatal.
		return nil, errors.New("critical header extensions are not supported")
	}
	var key crypto.PublicKey
	if x5c, ok := t.Header["x5c"]; ok {
		k, err := c.x5cKey(x5c, now)
		if err != nil {
			return nil, err
		}
		key = k
	} else {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("the header names no signing key (no kid or x5c)")
		}
		k, ok := c.keys[kid]
		if !ok {
			return nil, fmt.Errorf("signed by an untrusted key (kid %q is not in the rootcertbundle)", kid)
		}
		key = k
	}
	if err := keyFitsAlg(key, alg); err != nil {
		return nil, err
	}
	return key, nil
}

// x5cKey trusts an x5c chain when its leaf is one of the bundle's
// certificates (GitLab's self-signed certificate, whose dates are not
// enforced, exactly as when the same key is named by kid), or when the
// leaf chains through the other x5c certificates to a bundle certificate,
// checked by crypto/x509 at the current time with any key usage (as
// Distribution does).
func (c *TokenController) x5cKey(v any, now time.Time) (crypto.PublicKey, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, errors.New("x5c header is not a non-empty array")
	}
	if len(list) > maxX5C {
		return nil, fmt.Errorf("x5c header holds %d certificates (at most %d)", len(list), maxX5C)
	}
	chain := make([]*x509.Certificate, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("x5c[%d] is not a string", i)
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d] is not base64: %w", i, err)
		}
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
	}
	leaf := chain[0]
	for _, cert := range c.certs {
		if bytes.Equal(cert.Raw, leaf.Raw) {
			return leaf.PublicKey, nil
		}
	}
	inter := x509.NewCertPool()
	for _, cert := range chain[1:] {
		inter.AddCert(cert)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         c.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("x5c certificate is not trusted: %w", err)
	}
	return leaf.PublicKey, nil
}

// keyFitsAlg binds the algorithm to the key: RS/PS need RSA, ESnnn the
// matching ECDSA curve. The library would fail most mismatches anyway,
// but a clear reason helps whoever debugs a token issuer.
func keyFitsAlg(key crypto.PublicKey, alg string) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
			return nil
		}
	case *ecdsa.PublicKey:
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		if want != "" && k.Curve.Params().Name == want {
			return nil
		}
	}
	return fmt.Errorf("algorithm %s does not fit the signing key (%s)", alg, certs.KeyType(key))
}

// reason turns the library's error into a short, specific reason.
func reason(err error, opts TokenOptions) error {
	var msg string
	var ke *keyError
	switch {
	case errors.As(err, &ke):
		msg = ke.Error()
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		msg = "signature does not verify"
	case errors.Is(err, jwt.ErrTokenExpired):
		msg = "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		msg = "token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		msg = "a required claim is missing"
		for _, claim := range []string{"exp", "iss", "aud"} {
			if strings.Contains(err.Error(), claim+" claim is required") {
				msg = "token has no " + claim + " claim"
			}
		}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		msg = fmt.Sprintf("issuer is not %q", opts.Issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		msg = fmt.Sprintf("audience does not include %q", opts.Service)
	default:
		msg = err.Error()
	}
	return &reasonError{msg: msg, err: err}
}

// reasonError shows the short reason and keeps the library's error for
// errors.Is.
type reasonError struct {
	msg string
	err error
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.err }

// missingAccess returns what need asks and the access claim does not
// grant; "*" grants every action on its resource.
func missingAccess(granted []token.ResourceActions, need []Access) []Access {
	var missing []Access
	for _, n := range need {
		ok := false
		for _, g := range granted {
			if g.Type == n.Type && g.Name == n.Name &&
				(slices.Contains(g.Actions, n.Action) || slices.Contains(g.Actions, token.ActionAll)) {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, n)
		}
	}
	return missing
}
