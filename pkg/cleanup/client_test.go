package cleanup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/pkg/settings"
)

// fakeRegistry serves the API calls the client makes from memory: pages
// of two entries whatever n says, bearer auth through a realm that wants
// basic auth, and tag deletes refused in repositories under "locked/".
type fakeRegistry struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	tags    map[string]map[string]string // repo -> tag -> config created ("" for none)
	configs map[string]string            // config digest -> created
	deletes []string
	tokens  int
	// listedOnly holds "repo:tag" entries that tags/list names but whose
	// manifest answers unknown: a push still writing, or a delete racing.
	listedOnly map[string]bool
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{t: t, tags: map[string]map[string]string{}, configs: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func page(w http.ResponseWriter, r *http.Request, key string, all []string) {
	slices.Sort(all)
	start := 0
	if last := r.URL.Query().Get("last"); last != "" {
		start = slices.Index(all, last) + 1
	}
	end := min(start+2, len(all))
	if end < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s?n=2&last=%s>; rel="next"`, r.URL.Path, all[end-1]))
	}
	json.NewEncoder(w).Encode(map[string][]string{key: all[start:end]})
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/token" {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "s3cret" || r.URL.Query().Get("service") != "fake" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.tokens++
		json.NewEncoder(w).Encode(map[string]string{"token": "good"})
		return
	}
	if r.Header.Get("Authorization") != "Bearer good" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+f.srv.URL+`/token",service="fake",scope="x"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch {
	case p == "_catalog":
		var repos []string
		for name := range f.tags {
			repos = append(repos, name)
		}
		page(w, r, "repositories", repos)
	case strings.HasSuffix(p, "/tags/list"):
		var tags []string
		repo := strings.TrimSuffix(p, "/tags/list")
		for tag := range f.tags[repo] {
			tags = append(tags, tag)
		}
		for rt := range f.listedOnly {
			if r, tag, _ := strings.Cut(rt, ":"); r == repo {
				tags = append(tags, tag)
			}
		}
		page(w, r, "tags", tags)
	case strings.Contains(p, "/manifests/"):
		repo, tag, _ := strings.Cut(p, "/manifests/")
		created, ok := f.tags[repo][tag]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`)
			return
		}
		if r.Method == http.MethodDelete {
			if strings.HasPrefix(repo, "locked/") {
				w.WriteHeader(http.StatusMethodNotAllowed)
				fmt.Fprint(w, `{"errors":[{"code":"UNSUPPORTED","message":"tag deletes are off"}]}`)
				return
			}
			delete(f.tags[repo], tag)
			f.deletes = append(f.deletes, repo+":"+tag)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		sum := sha256.Sum256([]byte(p))
		config := "sha256:" + hex.EncodeToString(sum[:])
		f.configs[config] = created
		w.Header().Set("Content-Type", mediaTypeOCIManifest)
		fmt.Fprintf(w, `{"mediaType":%q,"config":{"digest":%q}}`, mediaTypeOCIManifest, config)
	case strings.Contains(p, "/blobs/"):
		_, d, _ := strings.Cut(p, "/blobs/")
		created, ok := f.configs[d]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"created": created})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeRegistry) client(t *testing.T) *Client {
	c, err := NewClient(f.srv.URL, Password{Username: "admin", Password: "s3cret"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientPaginatesAndAuthenticates(t *testing.T) {
	f := newFakeRegistry(t)
	for i := range 5 {
		f.tags[fmt.Sprintf("g/r%d", i)] = map[string]string{"a": "", "b": "", "c": ""}
	}
	c := f.client(t)
	repos, err := c.Repositories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g/r0", "g/r1", "g/r2", "g/r3", "g/r4"}; !slices.Equal(repos, want) {
		t.Errorf("repositories %v, want %v", repos, want)
	}
	tags, err := c.Tags(context.Background(), "g/r3")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tags, []string{"a", "b", "c"}) {
		t.Errorf("tags %v", tags)
	}
	// One token per scope, reused across pages.
	if f.tokens != 2 {
		t.Errorf("%d tokens fetched, want 2 (catalog, one repository)", f.tokens)
	}
	bad, _ := NewClient(f.srv.URL, Password{Username: "admin", Password: "wrong"}, 1)
	if _, err := bad.Repositories(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
}

// A registry that refuses tag deletes in one repository: nothing is
// deleted there, the error says why, and the other repository is cleaned.
func TestRunRefusedTagDeleteLeavesRepositoryAlone(t *testing.T) {
	f := newFakeRegistry(t)
	old := time.Now().Add(-48 * time.Hour).Format(time.RFC3339)
	f.tags["locked/app"] = map[string]string{"v1": old, "v2": "", "latest": old}
	f.tags["open/app"] = map[string]string{"v1": old, "v2": "", "latest": old}
	pol, err := Compile(settings.CleanupPolicy{Name: "all", Repositories: []string{"**"}, Enabled: true, NameRegex: "v.*", OlderThan: "1d"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f.client(t), Options{Policies: []*Policy{pol}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Error("report OK despite a refused repository")
	}
	byName := map[string]*Repository{}
	for _, rr := range rep.Repositories {
		byName[rr.Name] = rr
	}
	if rr := byName["locked/app"]; len(rr.Deleted) != 0 || !strings.Contains(rr.Error, "refuses to delete tags") || !strings.Contains(rr.Error, "nothing deleted") {
		t.Errorf("locked/app: %+v", rr)
	}
	// v2 has no date: older_than never deletes it.
	if rr := byName["open/app"]; !slices.Equal(rr.Deleted, []string{"v1"}) || rr.Error != "" {
		t.Errorf("open/app: %+v", rr)
	}
	slices.Sort(f.deletes)
	if !slices.Equal(f.deletes, []string{"open/app:v1"}) {
		t.Errorf("deletes %v", f.deletes)
	}
	// A dry run deletes nothing.
	f.deletes = nil
	f.tags["open/app"] = map[string]string{"v3": old}
	rep, err = Run(context.Background(), f.client(t), Options{Policies: []*Policy{pol}, DryRun: true})
	if err != nil || len(f.deletes) != 0 || !rep.OK() {
		t.Errorf("dry run: %v, deletes %v", err, f.deletes)
	}
}

func TestParseChallenge(t *testing.T) {
	for h, want := range map[string]Challenge{
		`Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="repository:g/a:pull,push"`: {"bearer", "https://gitlab.example.com/jwt/auth", "container_registry", "repository:g/a:pull,push"},
		`Bearer realm="r", scope="registry:catalog:*"`:                                                                     {"bearer", "r", "", "registry:catalog:*"},
		`Basic realm="Registry Realm"`:                                                                                     {"basic", "Registry Realm", "", ""},
	} {
		got, ok := parseChallenge(h)
		if !ok || got != want {
			t.Errorf("parseChallenge(%s) = %+v, %v", h, got, ok)
		}
	}
	for _, h := range []string{"", "Negotiate abc", `Bearer service="x"`, `Bearer realm="unclosed`} {
		if _, ok := parseChallenge(h); ok {
			t.Errorf("parseChallenge(%s) accepted", h)
		}
	}
}

// A tag listed whose manifest is unknown by the time it is read (a push
// still writing it, or a delete racing) is left out of the plan and
// reported; the rest of the repository is cleaned.
func TestRunLeavesOutTagsThatVanish(t *testing.T) {
	f := newFakeRegistry(t)
	old := time.Now().Add(-48 * time.Hour).Format(time.RFC3339)
	f.tags["g/app"] = map[string]string{"v1": old, "v2": old}
	f.listedOnly = map[string]bool{"g/app:v3": true}
	pol, err := Compile(settings.CleanupPolicy{Name: "all", Repositories: []string{"**"}, Enabled: true, NameRegex: "v.*", KeepN: 1, OlderThan: "1d"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f.client(t), Options{Policies: []*Policy{pol}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rr := rep.Repositories[0]
	if !rep.OK() || rr.Error != "" {
		t.Fatalf("report not OK: %+v", rr)
	}
	if !slices.Equal(rr.Vanished, []string{"v3"}) || rr.Seen() != 2 {
		t.Errorf("vanished %v, seen %d; want [v3], 2", rr.Vanished, rr.Seen())
	}
	if len(rr.Deleted) != 1 || len(f.deletes) != 1 {
		t.Errorf("deleted %v (registry saw %v), want one of v1, v2", rr.Deleted, f.deletes)
	}
}

// A disabled policy is named in the report with the repositories it
// claims (it is their first match, so the enabled policy after it does
// not clean them); the others are counted apart: no policy at all, or
// left out by --repository and --policy.
func TestRunReportsDisabledPolicies(t *testing.T) {
	f := newFakeRegistry(t)
	old := time.Now().Add(-48 * time.Hour).Format(time.RFC3339)
	for _, repo := range []string{"legacy/a", "legacy/b", "team/app", "other/x"} {
		f.tags[repo] = map[string]string{"v1": old}
	}
	var pols []*Policy
	for _, p := range []settings.CleanupPolicy{
		{Name: "legacy", Repositories: []string{"legacy/**"}, NameRegex: "v.*"},
		{Name: "team", Repositories: []string{"team/**", "legacy/**"}, Enabled: true, NameRegex: "v.*"},
		{Repositories: []string{"nothing/**"}, NameRegex: "v.*"}, // unnamed, claims nothing
	} {
		c, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		pols = append(pols, c)
	}
	type summary struct {
		Cleaned                     []string
		Skipped, NoPolicy, Excluded int
		Disabled                    []DisabledPolicy
	}
	run := func(opts Options) summary {
		t.Helper()
		opts.Policies, opts.DryRun = pols, true
		rep, err := Run(context.Background(), f.client(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		s := summary{Skipped: rep.Skipped, NoPolicy: rep.NoPolicy, Excluded: rep.Excluded}
		for _, rr := range rep.Repositories {
			s.Cleaned = append(s.Cleaned, rr.Name)
		}
		for _, d := range rep.Disabled {
			s.Disabled = append(s.Disabled, *d)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		opts Options
		want summary
	}{
		{"all", Options{}, summary{Cleaned: []string{"team/app"}, Skipped: 3, NoPolicy: 1,
			Disabled: []DisabledPolicy{{"legacy", 0, []string{"legacy/a", "legacy/b"}}, {"", 2, []string{}}}}},
		{"--repository", Options{Repository: "legacy/a"}, summary{Skipped: 4, Excluded: 3,
			Disabled: []DisabledPolicy{{"legacy", 0, []string{"legacy/a"}}, {"", 2, []string{}}}}},
		{"--policy runs the disabled one", Options{PolicyName: "legacy"},
			summary{Cleaned: []string{"legacy/a", "legacy/b"}, Skipped: 2, NoPolicy: 1, Excluded: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(tc.opts)
			slices.Sort(got.Cleaned)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}

	rep, err := Run(context.Background(), f.client(t), Options{Policies: pols, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if want := `"disabled":[{"name":"legacy","index":0,"repositories":["legacy/a","legacy/b"]},{"name":"","index":2,"repositories":[]}]`; !strings.Contains(string(b), want) ||
		!strings.Contains(string(b), `"no_policy":1,"excluded":0`) {
		t.Errorf("JSON %s\nwant it to hold %s", b, want)
	}
}
