package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"regctl/pkg/certs"
)

const (
	testRealm   = "https://gitlab.example.com/jwt/auth"
	testService = "container_registry"
	testIssuer  = "omnibus-gitlab-issuer"
)

// testNow is the controllers' clock in the token tests.
var testNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// keyCert is a signing key with its certificate.
type keyCert struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// pki is every key and certificate the token tests use. Only gitlab, ec
// and root are in the bundle.
type pki struct {
	gitlab keyCert // as omnibus makes it (certs.GenerateKeyPairBits)
	ec     keyCert // a self-signed ECDSA P-256 certificate
	root   keyCert // a CA
	inter  keyCert // an intermediate CA under root
	leaf   keyCert // a leaf under inter, not in the bundle
	other  keyCert // self-signed, untrusted
	rogue  keyCert // a leaf under an untrusted CA
	bundle string  // path of the PEM bundle
}

var sharedPKI struct {
	once sync.Once
	p    *pki
	err  error
}

// TestMain removes the shared bundle's folder after all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPKI.p != nil {
		os.RemoveAll(filepath.Dir(sharedPKI.p.bundle))
	}
	os.Exit(code)
}

// getPKI makes the keys once for all tests (RSA generation is slow under
// -race) and writes the bundle into a folder that outlives single tests.
func getPKI(t *testing.T) *pki {
	t.Helper()
	sharedPKI.once.Do(func() { sharedPKI.p, sharedPKI.err = makePKI() })
	if sharedPKI.err != nil {
		t.Fatal(sharedPKI.err)
	}
	return sharedPKI.p
}

func makePKI() (*pki, error) {
	p := &pki{}
	keyPEM, certPEM, err := certs.GenerateKeyPairBits(2048, testNow.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	if p.gitlab.key, err = certs.ParsePrivateKeyPEM(keyPEM); err != nil {
		return nil, err
	}
	if p.gitlab.cert, err = certs.ParseCertificatePEM(certPEM); err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if p.ec, err = makeCert("ec", ecKey, false, nil); err != nil {
		return nil, err
	}
	if p.root, err = makeCert("root CA", rsaKey(), true, nil); err != nil {
		return nil, err
	}
	if p.inter, err = makeCert("intermediate CA", rsaKey(), true, &p.root); err != nil {
		return nil, err
	}
	if p.leaf, err = makeCert("leaf", rsaKey(), false, &p.inter); err != nil {
		return nil, err
	}
	if p.other, err = makeCert("other", rsaKey(), false, nil); err != nil {
		return nil, err
	}
	rogueCA, err := makeCert("rogue CA", rsaKey(), true, nil)
	if err != nil {
		return nil, err
	}
	if p.rogue, err = makeCert("rogue leaf", rsaKey(), false, &rogueCA); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "regctl-auth-test-")
	if err != nil {
		return nil, err
	}
	var bundle []byte
	bundle = append(bundle, "# regctl test bundle: comments and other blocks are skipped\n"...)
	for _, c := range []*x509.Certificate{p.gitlab.cert, p.ec.cert, p.root.cert} {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p.bundle = filepath.Join(dir, "bundle.crt")
	return p, os.WriteFile(p.bundle, bundle, 0o644)
}

func rsaKey() crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// makeCert signs a certificate for key, self-signed when parent is nil.
func makeCert(cn string, key crypto.Signer, ca bool, parent *keyCert) (keyCert, error) {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return keyCert{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return keyCert{key: key, cert: cert}, err
}

// baseClaims are what GitLab puts in a token for group/app pull.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testService,
		"sub": "alice",
		"iat": testNow.Unix(),
		"nbf": testNow.Add(-5 * time.Second).Unix(),
		"exp": testNow.Add(5 * time.Minute).Unix(),
		"jti": "7c9b3f8e-2f4e-4b53-9f39-1c2a7b0c5d11",
		"access": []any{
			map[string]any{"type": "repository", "name": "group/app", "actions": []any{"pull"}},
		},
	}
}

// with returns baseClaims changed by set (a nil value deletes the claim).
func with(set map[string]any) jwt.MapClaims {
	c := baseClaims()
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func access(entries ...string) []any {
	var out []any
	for _, e := range entries {
		typ, rest, _ := strings.Cut(e, ":")
		i := strings.LastIndexByte(rest, ':')
		var actions []any
		for _, a := range strings.Split(rest[i+1:], ",") {
			actions = append(actions, a)
		}
		out = append(out, map[string]any{"type": typ, "name": rest[:i], "actions": actions})
	}
	return out
}

// sign builds a token with the library, the header changed by hdr (a nil
// value deletes the field). kid is the libtrust id of kc's key unless hdr
// says otherwise.
func sign(t *testing.T, method jwt.SigningMethod, kc keyCert, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	kid, err := certs.LibtrustKeyID(kc.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok.Header["kid"] = kid
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(kc.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTokenController(t *testing.T, mod func(*TokenOptions)) *TokenController {
	t.Helper()
	opts := TokenOptions{
		Realm: testRealm, Service: testService, Issuer: testIssuer,
		RootCertBundle: getPKI(t).bundle,
		Now:            func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := NewToken(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// routeOf is a small stand-in for the daemon's router.
func routeOf(path string) (kind, name string) {
	switch path {
	case "/v2/":
		return RouteBase, ""
	case "/v2/_catalog":
		return RouteCatalog, ""
	}
	rest := strings.TrimPrefix(path, "/v2/")
	if n, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return RouteUploads, n
	}
	if n, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return RouteTags, n
	}
	for _, r := range []struct{ sep, kind string }{
		{"/manifests/", RouteManifest}, {"/blobs/uploads/", RouteUpload},
		{"/blobs/", RouteBlob}, {"/referrers/", RouteReferrers},
	} {
		if i := strings.LastIndex(rest, r.sep); i > 0 {
			return r.kind, rest[:i]
		}
	}
	return "unknown", ""
}

// serve runs a registry stand-in guarded by ctl: 200 {"subject": …} when
// allowed, the refusal otherwise.
func serve(t *testing.T, ctl Controller) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, name := routeOf(r.URL.Path)
		g, err := ctl.Authorize(r, Needs(kind, name, r.Method, r.URL.Query()))
		var ae *Error
		switch {
		case errors.As(err, &ae):
			ae.Write(w, r)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"subject": g.Subject})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// response is what a test checks of an answer.
type response struct {
	status int
	www    string
	code   string // errors[0].code, or subject= for a 200
	detail []Access
}

func do(t *testing.T, srv *httptest.Server, method, path string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, www: strings.Join(resp.Header.Values("WWW-Authenticate"), " | ")}
	if method == http.MethodHead {
		return out
	}
	if resp.StatusCode == http.StatusOK {
		var body struct{ Subject string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		out.code = "subject=" + body.Subject
		return out
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var body struct {
		Errors []struct {
			Code    string
			Message string
			Detail  []Access
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: body is not the OCI error envelope: %v", method, path, err)
	}
	if len(body.Errors) != 1 || body.Errors[0].Message == "" {
		t.Fatalf("%s %s: want one error with a message, got %+v", method, path, body)
	}
	out.code, out.detail = body.Errors[0].Code, body.Errors[0].Detail
	return out
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}
