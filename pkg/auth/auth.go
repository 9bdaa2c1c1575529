// Package auth decides whether a registry request may proceed: token auth
// as GitLab uses it (JWTs signed with the internal key, checked against
// auth.token.rootcertbundle) and htpasswd (bcrypt) for standalone
// registries, as config.yml's auth section configures them.
//
// The daemon asks Needs what a request requires, then Controller.Authorize
// whether the request's credentials grant it. A refusal is an *Error that
// carries everything the response needs: status, OCI error code, message,
// and the WWW-Authenticate challenge (Error.Write sends all of it).
//
// Refusals follow CNCF Distribution, whose behaviour docker clients are
// built around: every refusal is 401, insufficient scope included (RFC
// 6750 suggests 403 there, but docker, containerd and go-containerregistry
// answer a 401 Bearer challenge by fetching a token for the scope it names
// and retrying, while a 403 ends the request). The challenge names the
// scope the request needed and, when a token was sent, why it failed
// (error="invalid_token" or error="insufficient_scope"). The JSON body is
// UNAUTHORIZED when credentials are missing or invalid and DENIED when a
// valid token lacks the access (Distribution sends UNAUTHORIZED for both;
// DENIED tells the user "requested access to the resource is denied",
// which is what actually happened).
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"regctl/pkg/ocierr"
	"regctl/pkg/token"
)

// Access is one action a request needs on one resource, e.g.
// {repository, group/app, push} or {registry, catalog, *}.
type Access struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Action string `json:"action"`
}

func (a Access) String() string { return a.Type + ":" + a.Name + ":" + a.Action }

// Grant is what a successful Authorize knows about the caller.
type Grant struct {
	// Subject is the token's sub claim or the htpasswd user: the actor the
	// registry logs and puts in notifications.
	Subject string
	// Access is what the token's access claim grants (token auth only).
	Access []token.ResourceActions
	// All is true when the credentials grant every access (htpasswd).
	All bool
}

// Controller checks a request's credentials against the access it needs.
type Controller interface {
	// Authorize returns a Grant when the request's credentials are valid
	// and grant every Access in need (an empty need asks only for valid
	// credentials, as the /v2/ base route does). A refusal is an *Error;
	// any other error is the controller failing (an htpasswd file that no
	// longer reads, say), which should become a 500 and a log line, never
	// a pass.
	Authorize(r *http.Request, need []Access) (*Grant, error)
}

// OCI error codes a refusal carries.
const (
	CodeUnauthorized = ocierr.CodeUnauthorized
	CodeDenied       = ocierr.CodeDenied
)

// Causes of a refusal, for errors.Is on Error (and for logs).
var (
	// ErrNoCredentials: the request carried no credentials of the
	// controller's scheme.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken: a bearer token was sent but is malformed, expired,
	// not yet valid, for another issuer or audience, or not signed by a
	// trusted key.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInsufficientScope: a valid token that does not grant the access.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrBadCredentials: basic credentials that do not match htpasswd.
	ErrBadCredentials = errors.New("invalid username or password")
)

// Challenge is a WWW-Authenticate value.
type Challenge struct {
	Scheme string // "Bearer" or "Basic"
	Realm  string
	// Service, Scope and Error are Bearer parameters, left out when empty.
	// Scope is space-separated "type:name:actions" entries.
	Service string
	Scope   string
	Error   string // "invalid_token" or "insufficient_scope"
}

// String formats the challenge as Distribution does:
// Bearer realm="…",service="…",scope="…",error="…".
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString(c.Scheme)
	b.WriteString(" realm=")
	b.WriteString(quote(c.Realm))
	for _, p := range [][2]string{{"service", c.Service}, {"scope", c.Scope}, {"error", c.Error}} {
		if p[1] != "" {
			b.WriteString("," + p[0] + "=" + quote(p[1]))
		}
	}
	return b.String()
}

// quote makes an RFC 9110 quoted-string: only " and \ need escaping.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Error is a refusal: the response to send instead of the request's.
type Error struct {
	Status    int    // http.StatusUnauthorized
	Code      string // CodeUnauthorized or CodeDenied
	Message   string // for the client
	Challenge Challenge
	// Need is what the request needed; it goes in the body's detail, as
	// Distribution sends the access records.
	Need []Access
	// Err is why, wrapping one of the Err* causes; for the log.
	Err error
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Err != nil && !strings.Contains(e.Message, e.Err.Error()) {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Write sends the refusal: the WWW-Authenticate header and the OCI JSON
// error envelope (headers only for HEAD).
func (e *Error) Write(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", e.Challenge.String())
	ocierr.Write(w, r, e.OCI())
}

// OCI is the refusal as an entry of the OCI error envelope, with the
// access records the request needed as its detail.
func (e *Error) OCI() *ocierr.Error {
	oe := ocierr.New(e.Status, e.Code, e.Message)
	if len(e.Need) > 0 {
		oe.Detail = e.Need
	}
	return oe
}

// Route kinds, as the daemon's router names them.
const (
	RouteBase      = "base"      // /v2/
	RouteCatalog   = "catalog"   // /v2/_catalog
	RouteTags      = "tags"      // /v2/<name>/tags/list
	RouteManifest  = "manifest"  // /v2/<name>/manifests/<ref>
	RouteBlob      = "blob"      // /v2/<name>/blobs/<digest>
	RouteUploads   = "uploads"   // /v2/<name>/blobs/uploads/
	RouteUpload    = "upload"    // /v2/<name>/blobs/uploads/<id>
	RouteReferrers = "referrers" // /v2/<name>/referrers/<digest>
)

// Needs is the access a request needs, as Distribution maps it: on a
// repository route GET/HEAD need pull, POST/PUT/PATCH pull and push, DELETE
// delete; a cross-repository mount (POST uploads ?from=) also needs pull on
// the source; _catalog needs registry:catalog:*; the base route needs
// nothing but valid credentials.
//
// Unknown methods on a repository route need pull, so the router's 405
// is only shown to someone allowed to see the repository; an unknown route
// kind with no name needs an access no GitLab token grants, so a router
// change cannot open a route to every valid token by accident.
func Needs(kind, name, method string, query url.Values) []Access {
	switch kind {
	case RouteBase:
		return nil
	case RouteCatalog:
		return []Access{{Type: token.TypeRegistry, Name: "catalog", Action: token.ActionAll}}
	}
	if name == "" {
		return []Access{{Type: token.TypeRegistry, Name: "route:" + kind, Action: "unknown"}}
	}
	need := repositoryNeeds(name, method)
	if kind == RouteUploads && method == http.MethodPost {
		if from := query.Get("from"); from != "" && from != name {
			need = append(need, repositoryNeeds(from, http.MethodGet)...)
		}
	}
	return need
}

func repositoryNeeds(name, method string) []Access {
	a := func(action string) Access {
		return Access{Type: token.TypeRepository, Name: name, Action: action}
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return []Access{a(token.ActionPull)}
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return []Access{a(token.ActionPull), a(token.ActionPush)}
	case http.MethodDelete:
		return []Access{a(token.ActionDelete)}
	}
	return []Access{a(token.ActionPull)}
}

// scopeOf groups accesses by resource, in order of first appearance, into
// a challenge scope: "repository:a:pull,push repository:b:pull".
func scopeOf(need []Access) string {
	var order []string
	actions := map[string][]string{}
	for _, a := range need {
		res := a.Type + ":" + a.Name
		if _, ok := actions[res]; !ok {
			order = append(order, res)
		}
		if !slices.Contains(actions[res], a.Action) {
			actions[res] = append(actions[res], a.Action)
		}
	}
	scopes := make([]string, len(order))
	for i, res := range order {
		scopes[i] = res + ":" + strings.Join(actions[res], ",")
	}
	return strings.Join(scopes, " ")
}

// FromConfig builds the controller config.yml's auth section asks for
// (distconfig.Config.Auth): nil, nil when there is none.
func FromConfig(auth map[string]any) (Controller, error) {
	if len(auth) == 0 {
		return nil, nil
	}
	if len(auth) > 1 {
		return nil, errors.New("auth: names more than one scheme: keep one of token and htpasswd")
	}
	for scheme, v := range auth {
		params, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, fmt.Errorf("auth.%s: must be a map, not %T", scheme, v)
		}
		p := schemeParams{scheme: scheme, m: params}
		switch scheme {
		case "token":
			opts := TokenOptions{
				Realm:          p.str("realm"),
				Service:        p.str("service"),
				Issuer:         p.str("issuer"),
				RootCertBundle: p.str("rootcertbundle"),
				AutoRedirect:   p.boolean("autoredirect"),
			}
			if p.err != nil {
				return nil, p.err
			}
			c, err := NewToken(opts)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return c, nil
		case "htpasswd":
			opts := HTPasswdOptions{Realm: p.str("realm"), Path: p.str("path")}
			if p.err != nil {
				return nil, p.err
			}
			c, err := NewHTPasswd(opts)
			if err != nil {
				return nil, err
			}
			return c, nil
		default:
			return nil, fmt.Errorf("auth.%s: unknown scheme (want token or htpasswd)", scheme)
		}
	}
	return nil, nil
}

// schemeParams reads typed values from one scheme's map, keeping the first
// type error.
type schemeParams struct {
	scheme string
	m      map[string]any
	err    error
}

func (p *schemeParams) str(key string) string {
	v, ok := p.m[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok && p.err == nil {
		p.err = fmt.Errorf("auth.%s.%s: must be a string, not %T", p.scheme, key, v)
	}
	return s
}

func (p *schemeParams) boolean(key string) bool {
	v, ok := p.m[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok && p.err == nil {
		p.err = fmt.Errorf("auth.%s.%s: must be true or false, not %T", p.scheme, key, v)
	}
	return b
}
