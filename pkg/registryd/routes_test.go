package registryd

import (
	"mime"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The request path parser and the name, tag and digest checks are written
// by hand to keep regexps off the path of every request. These are the
// regular expressions they replace; the tests below hold the two to the
// same answers.
var (
	refNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	refTagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	refRoutes = []struct {
		re   *regexp.Regexp
		kind routeKind
	}{
		{regexp.MustCompile(`^(.+)/tags/list$`), routeTags},
		{regexp.MustCompile(`^(.+)/manifests/([^/]+)$`), routeManifest},
		{regexp.MustCompile(`^(.+)/blobs/uploads/?$`), routeUploads},
		{regexp.MustCompile(`^(.+)/blobs/uploads/([^/]+)$`), routeUpload},
		{regexp.MustCompile(`^(.+)/blobs/([^/]+)$`), routeBlob},
		{regexp.MustCompile(`^(.+)/referrers/([^/]+)$`), routeReferrers},
	}
)

// refParseRoute is the regexp-based parser parseRoute replaced.
func refParseRoute(path string) (route, bool) {
	switch path {
	case "/v2", "/v2/":
		return route{kind: routeBase}, true
	case "/v2/_catalog":
		return route{kind: routeCatalog}, true
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, false
	}
	for _, rt := range refRoutes {
		m := rt.re.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		r := route{kind: rt.kind, name: m[1]}
		if len(m) > 2 {
			last, err := url.PathUnescape(m[2])
			if err != nil {
				return route{}, false
			}
			if rt.kind == routeUpload {
				r.uploadID = last
			} else {
				r.ref = last
			}
		}
		return r, true
	}
	return route{}, false
}

// refAccepts is the accepts that parsed every part with mime.ParseMediaType.
func refAccepts(headers []string, mt string) bool {
	listed := false
	for _, h := range headers {
		for _, part := range strings.Split(h, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			t, params, err := mime.ParseMediaType(part)
			if err != nil {
				t, _, _ = strings.Cut(part, ";")
				t = strings.ToLower(strings.TrimSpace(t))
			}
			if q, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
					continue
				}
			}
			if strings.Contains(t, "*") || t == mt {
				return true
			}
			listed = true
		}
	}
	return !listed
}

var routeSeeds = []string{
	"/v2", "/v2/", "/v2/_catalog", "/v2/_catalog/", "/v3/a/tags/list", "/v2//tags/list",
	"/v2/a/tags/list", "/v2/a/b/tags/list", "/v2/tags/list", "/v2//tags/list/", "/v2/a/tags/list/",
	"/v2/a/manifests/latest", "/v2/a/manifests/", "/v2/a/manifests", "/v2/manifests/x", "/v2//manifests/x",
	"/v2/a/manifests/sha256%3Aabc", "/v2/a/manifests/%zz", "/v2/a/manifests/b/manifests/c",
	"/v2/a/blobs/uploads", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads//", "/v2/blobs/uploads/",
	"/v2/a/blobs/uploads/0f0f-id", "/v2/a/blobs/uploads/%41", "/v2/a/blobs/sha256:00", "/v2/a/blobs/",
	"/v2/a/blobs/uploads/x/y", "/v2/a/blobs/blobs/uploads", "/v2/a/referrers/sha256:1", "/v2/a/referrers/",
	"/v2/a\n/tags/list", "/v2/a/tags/list\n", "/v2/a\nb/manifests/x", "/v2/a/manifests/x\ny",
	"/v2/a\n/blobs/uploads/", "/v2/\n/blobs/x", "/v2/a/b/c/blobs/uploads/uploads/blobs/uploads",
	"/v2/a/manifests/tags/list", "/v2/a/tags/list/manifests/x", "/v2/\xff/blobs/x", "/v2/a/b",
}

func TestParseRouteMatchesRegexps(t *testing.T) {
	for _, p := range routeSeeds {
		got, gotOK := parseRoute(p)
		want, wantOK := refParseRoute(p)
		if got != want || gotOK != wantOK {
			t.Errorf("parseRoute(%q) = %+v, %v; the regexps say %+v, %v", p, got, gotOK, want, wantOK)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, p := range routeSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, gotOK := parseRoute(p)
		want, wantOK := refParseRoute(p)
		if got != want || gotOK != wantOK {
			t.Errorf("parseRoute(%q) = %+v, %v; the regexps say %+v, %v", p, got, gotOK, want, wantOK)
		}
	})
}

var nameSeeds = []string{
	"", "a", "A", "a/b", "a//b", "/a", "a/", "a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b",
	"a---b", "a-_b", "a._b", "a.-b", "-a", "a-", "_a", "a_", ".a", "a.", "a/b.c_d__e-f--g/h",
	"0", "a/0/b", "a/-/b", "a/_", "ab/c\n", "a b", "a%2fb", "library/ubuntu", "a/b/", "ä",
}

func TestValidNameMatchesRegexp(t *testing.T) {
	for _, n := range nameSeeds {
		if got, want := validName(n), refNameRE.MatchString(n); got != want {
			t.Errorf("validName(%q) = %v, the regexp says %v", n, got, want)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, n := range nameSeeds {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if got, want := validName(n), refNameRE.MatchString(n); got != want {
			t.Errorf("validName(%q) = %v, the regexp says %v", n, got, want)
		}
	})
}

var tagSeeds = []string{
	"", "a", "A", "_", ".", "-", "latest", "v1.2.3", "v1..2", "_x", ".x", "-x", "x-", "x.", "a b",
	"a/b", "a:b", strings.Repeat("a", 128), strings.Repeat("a", 129), "é", "a\n",
}

func TestValidTagMatchesRegexp(t *testing.T) {
	for _, tag := range tagSeeds {
		if got, want := validTag(tag), refTagRE.MatchString(tag); got != want {
			t.Errorf("validTag(%q) = %v, the regexp says %v", tag, got, want)
		}
	}
}

func FuzzValidTag(f *testing.F) {
	for _, tag := range tagSeeds {
		f.Add(tag)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if got, want := validTag(tag), refTagRE.MatchString(tag); got != want {
			t.Errorf("validTag(%q) = %v, the regexp says %v", tag, got, want)
		}
	})
}

var digestSeeds = []string{
	"", "sha256:", "sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("A", 64),
	"sha256:" + strings.Repeat("0", 63), "sha256:" + strings.Repeat("0", 65), "sha256:" + strings.Repeat("g", 64),
	"SHA256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("a", 128), "sha384:" + strings.Repeat("a", 96),
	string(digest.FromString("x")), " " + string(digest.FromString("x")),
}

// TestCanonicalSHA256 holds the fast path to digest.Parse: whatever it
// accepts, digest.Parse accepts as the same sha256 digest.
func TestCanonicalSHA256(t *testing.T) {
	for _, s := range digestSeeds {
		checkCanonicalSHA256(t, s)
	}
}

func FuzzCanonicalSHA256(f *testing.F) {
	for _, s := range digestSeeds {
		f.Add(s)
	}
	f.Fuzz(checkCanonicalSHA256)
}

func checkCanonicalSHA256(t *testing.T, s string) {
	d, err := digest.Parse(s)
	want := err == nil && d.Algorithm() == digest.SHA256
	if got := isCanonicalSHA256(s); got != want {
		t.Errorf("isCanonicalSHA256(%q) = %v; digest.Parse says sha256 %v (%v)", s, got, want, err)
	}
	got, gotErr := parseDigest(s)
	if want && (gotErr != nil || got != d) {
		t.Errorf("parseDigest(%q) = %q, %v; want %q", s, got, gotErr, d)
	}
}

var acceptSeeds = [][2]string{
	{"", "application/vnd.oci.image.manifest.v1+json"},
	{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.manifest.v1+json"},
	{"Application/VND.OCI.image.manifest.v1+json", "application/vnd.oci.image.manifest.v1+json"},
	{"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"},
	{"application/vnd.oci.image.manifest.v1+json;q=0", "application/vnd.oci.image.manifest.v1+json"},
	{"application/vnd.oci.image.manifest.v1+json; q=0.5, */*;q=0", "application/vnd.oci.image.manifest.v1+json"},
	{"*/*", "application/vnd.oci.image.manifest.v1+json"},
	{" , ,", "application/vnd.oci.image.manifest.v1+json"},
	{"bad type, application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.manifest.v1+json"},
	{"bad type;q=0", "bad type"},
	{"BAD TYPE", "bad type"},
	{"a/b;q=x", "a/b"},
	{"text/plain;;", "text/plain"},
}

func TestAcceptsMatchesMime(t *testing.T) {
	for _, c := range acceptSeeds {
		if got, want := accepts([]string{c[0]}, c[1]), refAccepts([]string{c[0]}, c[1]); got != want {
			t.Errorf("accepts(%q, %q) = %v, want %v", c[0], c[1], got, want)
		}
	}
}

func FuzzAccepts(f *testing.F) {
	for _, c := range acceptSeeds {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, header, mt string) {
		if got, want := accepts([]string{header}, mt), refAccepts([]string{header}, mt); got != want {
			t.Errorf("accepts(%q, %q) = %v, want %v", header, mt, got, want)
		}
	})
}
