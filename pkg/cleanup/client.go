package cleanup

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"regctl/pkg/token"
)

// Media types the client asks for and understands.
const (
	mediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

var acceptManifests = strings.Join([]string{mediaTypeOCIManifest, mediaTypeOCIIndex, mediaTypeDockerManifest, mediaTypeDockerList}, ", ")

// Challenge is a WWW-Authenticate challenge of a 401 answer.
type Challenge struct {
	Scheme  string // "bearer" or "basic", lowercase
	Realm   string
	Service string
	Scope   string // space-separated scopes, as the registry asks
}

// Authenticator answers a registry's challenges.
type Authenticator interface {
	// Authorization returns the Authorization header value for a request
	// the registry challenged with ch.
	Authorization(ctx context.Context, ch Challenge) (string, error)
}

// Client is a small OCI distribution API client: catalog, tags,
// manifests, config blobs and tag deletion, with token auth. It is safe
// for concurrent use; at most Requests requests are in flight.
type Client struct {
	base *url.URL
	http *http.Client
	auth Authenticator
	sem  chan struct{}

	mu     sync.Mutex
	tokens map[string]string // predicted scope -> Authorization value
}

// NewClient makes a client for the registry at base (scheme and host,
// e.g. http://127.0.0.1:5000). auth may be nil for an open registry.
// requests bounds the requests in flight (0: 16).
func NewClient(base string, auth Authenticator, requests int) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q: want http(s)://HOST[:PORT]", base)
	}
	if requests <= 0 {
		requests = 16
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = requests
	return &Client{
		base:   u,
		http:   &http.Client{Transport: tr, Timeout: 2 * time.Minute},
		auth:   auth,
		sem:    make(chan struct{}, requests),
		tokens: map[string]string{},
	}, nil
}

// HTTPError is an unexpected answer.
type HTTPError struct {
	Method, URL string
	Status      int
	Code        string // the first error code of the body, if any
	Message     string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// do sends a request with the token cached for scope, answering one
// challenge when the registry sends one. The caller closes the body of a
// 2xx answer; any other status comes back as *HTTPError.
func (c *Client) do(ctx context.Context, method, ref, scope, accept string) (*http.Response, error) {
	u, err := c.base.Parse(ref)
	if err != nil {
		return nil, err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		c.mu.Lock()
		authz := c.tokens[scope]
		c.mu.Unlock()
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		herr := readError(method, u, resp)
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || c.auth == nil {
			return nil, herr
		}
		ch, ok := parseChallenge(resp.Header.Get("WWW-Authenticate"))
		if !ok {
			return nil, herr
		}
		authz, err = c.auth.Authorization(ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("%s %s: authenticating: %w", method, u.Redacted(), err)
		}
		c.mu.Lock()
		c.tokens[scope] = authz
		c.mu.Unlock()
	}
}

func readError(method string, u *url.URL, resp *http.Response) *HTTPError {
	defer resp.Body.Close()
	e := &HTTPError{Method: method, URL: u.Path, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		e.Code, e.Message = body.Errors[0].Code, body.Errors[0].Message
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 200 {
		e.Message = s
	}
	return e
}

// parseChallenge reads `Bearer realm="...",service="...",scope="..."` or
// `Basic realm="..."`.
func parseChallenge(h string) (Challenge, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	ch := Challenge{Scheme: strings.ToLower(scheme)}
	if ch.Scheme != "bearer" && ch.Scheme != "basic" {
		return ch, false
	}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(v, `"`) {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				return ch, false
			}
			v, rest = v[1:end+1], v[end+2:]
		} else {
			v, rest, _ = strings.Cut(v, ",")
		}
		rest = strings.TrimLeft(rest, ", ")
		switch k {
		case "realm":
			ch.Realm = v
		case "service":
			ch.Service = v
		case "scope":
			ch.Scope = v
		}
	}
	return ch, ch.Scheme == "basic" || ch.Realm != ""
}

// getJSON GETs ref and decodes the body into v, returning the next page
// from the Link header ("" when none).
func (c *Client) getJSON(ctx context.Context, ref, scope string, v any) (next string, err error) {
	resp, err := c.do(ctx, http.MethodGet, ref, scope, "application/json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return "", fmt.Errorf("GET %s: %w", ref, err)
	}
	return nextLink(resp.Header.Get("Link")), nil
}

// nextLink reads `<url>; rel="next"`.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, _ := strings.Cut(part, ";")
		if strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

// Repositories lists the catalog, page by page.
func (c *Client) Repositories(ctx context.Context) ([]string, error) {
	var all []string
	for ref := "/v2/_catalog?n=1000"; ref != ""; {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		next, err := c.getJSON(ctx, ref, "registry:catalog:*", &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Repositories...)
		ref = next
	}
	return all, nil
}

// Tags lists a repository's tags, page by page.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	for ref := "/v2/" + repo + "/tags/list?n=1000"; ref != ""; {
		var page struct {
			Tags []string `json:"tags"`
		}
		next, err := c.getJSON(ctx, ref, pullScope(repo), &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Tags...)
		ref = next
	}
	return all, nil
}

func pullScope(repo string) string   { return "repository:" + repo + ":pull" }
func deleteScope(repo string) string { return "repository:" + repo + ":delete" }

// Manifest is a fetched manifest, decoded as far as dates need.
type Manifest struct {
	MediaType string
	Digest    string
	Config    string   // image manifests: the config blob's digest
	Children  []string // indexes: the manifests' digests
}

// IsIndex tells an image index or manifest list.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == mediaTypeOCIIndex || m.MediaType == mediaTypeDockerList
}

// GetManifest fetches a manifest by tag or digest.
func (c *Client) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, pullScope(repo), acceptManifests)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("manifest %s:%s: %w", repo, ref, err)
	}
	m := &Manifest{MediaType: doc.MediaType, Digest: resp.Header.Get("Docker-Content-Digest"), Config: doc.Config.Digest}
	if ct := resp.Header.Get("Content-Type"); m.MediaType == "" {
		m.MediaType = ct
	}
	for _, d := range doc.Manifests {
		m.Children = append(m.Children, d.Digest)
	}
	if m.IsIndex() {
		m.Config = ""
	}
	return m, nil
}

// Created reads the "created" date of an image config blob; zero when the
// config has none (or one that does not parse, as GitLab shows no date).
func (c *Client) Created(ctx context.Context, repo, configDigest string) (time.Time, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+configDigest, pullScope(repo), "")
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	var cfg struct {
		Created string `json:"created"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&cfg); err != nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, cfg.Created)
	if err != nil {
		return time.Time{}, nil
	}
	return t, nil
}

// ErrTagDeleteRefused is wrapped when the registry does not delete tags
// by name (only by digest, or not at all).
var ErrTagDeleteRefused = errors.New("the registry refuses to delete tags")

// DeleteTag deletes one tag by name: DELETE /v2/<repo>/manifests/<tag>.
// The manifest and other tags pointing at it stay. A tag already gone is
// no error.
func (c *Client) DeleteTag(ctx context.Context, repo, tag string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, deleteScope(repo), "")
	if err == nil {
		resp.Body.Close()
		return nil
	}
	if isManifestUnknown(err) {
		return nil
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusUnauthorized, he.Status == http.StatusForbidden:
			return fmt.Errorf("%w to these credentials (their token needs %s): %v", ErrTagDeleteRefused, deleteScope(repo), err)
		case he.Status == http.StatusMethodNotAllowed, he.Code == "UNSUPPORTED":
			return fmt.Errorf("%w: %v", ErrTagDeleteRefused, err)
		}
	}
	return err
}

// Minter answers bearer challenges with tokens minted as GitLab mints
// them, signed with the registry's internal key: for the local daemon.
type Minter struct {
	Key     crypto.Signer
	Issuer  string
	Subject string
}

// Authorization mints a token for exactly the scopes asked.
func (m Minter) Authorization(_ context.Context, ch Challenge) (string, error) {
	if ch.Scheme != "bearer" {
		return "", fmt.Errorf("the registry asks for %s auth, not a token", ch.Scheme)
	}
	var access []token.ResourceActions
	for _, s := range strings.Fields(ch.Scope) {
		ra, err := token.ParseScope(s)
		if err != nil {
			return "", err
		}
		access = append(access, ra)
	}
	issued, err := token.Issue(m.Key, token.IssueOptions{
		Issuer: m.Issuer, Audience: ch.Service, Subject: m.Subject, Access: access, TTL: 15 * time.Minute,
	})
	if err != nil {
		return "", err
	}
	return "Bearer " + issued.Token, nil
}

// Password answers challenges with a user name and password: basic auth
// directly, or a token from the challenge's realm (docker's token flow).
type Password struct {
	Username, Password string
	HTTP               *http.Client // nil: http.DefaultClient
}

// Authorization answers one challenge.
func (p Password) Authorization(ctx context.Context, ch Challenge) (string, error) {
	if ch.Scheme == "basic" {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(p.Username, p.Password)
		return req.Header.Get("Authorization"), nil
	}
	u, err := url.Parse(ch.Realm)
	if err != nil {
		return "", fmt.Errorf("token realm %q: %w", ch.Realm, err)
	}
	q := u.Query()
	if ch.Service != "" {
		q.Set("service", ch.Service)
	}
	for _, s := range strings.Fields(ch.Scope) {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	if p.Username != "" {
		req.SetBasicAuth(p.Username, p.Password)
	}
	hc := p.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token from %s: %s", u.Redacted(), resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("token from %s: %w", u.Redacted(), err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", fmt.Errorf("token from %s: the answer holds no token", u.Redacted())
	}
	return "Bearer " + body.Token, nil
}
