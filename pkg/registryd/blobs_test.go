package registryd

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// blobEnv is a registry on a real filesystem driver in a temporary
// folder, served over HTTP. (Its helpers are methods so that they do not
// collide with those of the manifest tests in this package.)
type blobEnv struct {
	t    *testing.T
	root string
	drv  *storage.Filesystem
	srv  *Server
	hs   *httptest.Server
}

// newBlobEnv starts a server with deletes enabled; edit adjusts Options
// (and may wrap the driver).
func newBlobEnv(t *testing.T, edit func(*Options)) *blobEnv {
	t.Helper()
	root := t.TempDir()
	return newBlobEnvAt(t, root, edit)
}

// newBlobEnvAt starts a server on an existing root: a "restarted" node.
func newBlobEnvAt(t *testing.T, root string, edit func(*Options)) *blobEnv {
	t.Helper()
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Driver: drv, DeleteEnabled: true}
	if edit != nil {
		edit(&opts)
	}
	srv := New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &blobEnv{t: t, root: root, drv: drv, srv: srv, hs: hs}
}

type result struct {
	code int
	h    http.Header
	body []byte
}

// errCode is the first OCI error code of a response, or "".
func (r result) errCode() string {
	var env struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

// do sends a request. target is a path or a full URL (a Location); body
// is nil, []byte (with Content-Length) or an io.Reader (streamed, with no
// length); hdr alternates header names and values.
func (e *blobEnv) do(method, target string, body any, hdr ...string) result {
	e.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = e.hs.URL + target
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		e.t.Fatalf("bad body type %T", body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{code: resp.StatusCode, h: resp.Header, body: b}
}

// expect fails unless r has the status (and, when code is set, the OCI
// error code).
func (e *blobEnv) expect(r result, status int, code string) {
	e.t.Helper()
	if r.code != status || r.errCode() != code {
		e.t.Fatalf("got %d %q (%s), want %d %q", r.code, r.errCode(), bytes.TrimSpace(r.body), status, code)
	}
}

// push stores data in repo with a monolithic POST.
func (e *blobEnv) push(repo string, data []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(data)
	r := e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data)
	e.expect(r, http.StatusCreated, "")
	return d
}

// startUpload opens an upload session and returns its Location.
func (e *blobEnv) startUpload(repo string) string {
	e.t.Helper()
	r := e.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	e.expect(r, http.StatusAccepted, "")
	return r.h.Get("Location")
}

// file reads a driver path straight from the folder.
func (e *blobEnv) file(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(e.root, filepath.FromSlash(p)))
}

// exists reports whether a driver path is in the folder.
func (e *blobEnv) exists(p string) bool {
	_, err := os.Stat(filepath.Join(e.root, filepath.FromSlash(p)))
	return err == nil
}

// countFiles counts the regular files below a driver path.
func (e *blobEnv) countFiles(p string) int {
	n := 0
	filepath.WalkDir(filepath.Join(e.root, filepath.FromSlash(p)), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBlobGetHead(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 1000)
	d := e.push("group/app", data)

	for _, m := range []string{"GET", "HEAD"} {
		r := e.do(m, "/v2/group/app/blobs/"+d.String(), nil)
		e.expect(r, http.StatusOK, "")
		want := map[string]string{
			"Content-Length":        "1000",
			"Docker-Content-Digest": d.String(),
			"Content-Type":          "application/octet-stream",
			"Etag":                  `"` + d.String() + `"`,
			"Accept-Ranges":         "bytes",
			"Cache-Control":         "max-age=31536000",
		}
		for k, v := range want {
			if got := r.h.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", m, k, got, v)
			}
		}
		if m == "GET" && !bytes.Equal(r.body, data) {
			t.Errorf("GET body differs from the pushed blob")
		}
		if m == "HEAD" && len(r.body) != 0 {
			t.Errorf("HEAD has a body of %d bytes", len(r.body))
		}
	}

	// The ETag never goes stale.
	r := e.do("GET", "/v2/group/app/blobs/"+d.String(), nil, "If-None-Match", `"`+d.String()+`"`)
	e.expect(r, http.StatusNotModified, "")

	// An escaped colon in the digest is the same blob.
	r = e.do("HEAD", "/v2/group/app/blobs/"+strings.Replace(d.String(), ":", "%3A", 1), nil)
	e.expect(r, http.StatusOK, "")
}

func TestBlobUnknownAndInvalid(t *testing.T) {
	e := newBlobEnv(t, nil)
	d := e.push("a", []byte("hello"))
	unknown := digest.FromString("nope")
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown", "GET", "/v2/a/blobs/" + unknown.String(), 404, CodeBlobUnknown},
		{"unknown head", "HEAD", "/v2/a/blobs/" + unknown.String(), 404, ""},
		{"not linked in this repo", "GET", "/v2/b/blobs/" + d.String(), 404, CodeBlobUnknown},
		{"bad hex", "GET", "/v2/a/blobs/sha256:xyz", 400, CodeDigestInvalid},
		{"short hex", "GET", "/v2/a/blobs/sha256:abcd", 400, CodeDigestInvalid},
		{"unsupported algorithm", "GET", "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, CodeDigestInvalid},
		{"bad digest head", "HEAD", "/v2/a/blobs/nodigest", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, nil)
			e.expect(r, tc.status, tc.code)
			if tc.method == "HEAD" && len(r.body) != 0 {
				t.Errorf("HEAD error has a body")
			}
		})
	}

	// A link whose data is gone (a GC run) is no blob.
	if err := os.Remove(filepath.Join(e.root, filepath.FromSlash(storage.BlobDataPath(d)))); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("GET", "/v2/a/blobs/"+d.String(), nil), 404, CodeBlobUnknown)
}

// noOpener hides the filesystem driver's Open, so blobs are served
// through Reader: the path an S3 driver takes. Storage is still real.
type noOpener struct{ storage.Driver }

// redirecting adds a RedirectURL to the real driver, as S3 has.
type redirecting struct{ storage.Driver }

func (redirecting) RedirectURL(r *http.Request, path string) (string, error) {
	return "https://bucket.example.com" + path + "?signed=1", nil
}

func TestBlobRanges(t *testing.T) {
	data := randomBytes(t, 100)
	for _, variant := range []struct {
		name string
		edit func(*Options)
	}{
		{"opener", nil},
		{"reader", func(o *Options) { o.Driver = noOpener{o.Driver} }},
	} {
		t.Run(variant.name, func(t *testing.T) {
			e := newBlobEnv(t, variant.edit)
			d := e.push("r", data)
			u := "/v2/r/blobs/" + d.String()
			for _, tc := range []struct {
				rng        string
				start, end int
			}{
				{"bytes=0-9", 0, 9},
				{"bytes=10-19", 10, 19},
				{"bytes=50-50", 50, 50},
				{"bytes=95-", 95, 99},
				{"bytes=-5", 95, 99},
				{"bytes=-500", 0, 99},
				{"bytes=90-200", 90, 99},
				{"bytes=100-200, 3-4", 3, 4}, // the unsatisfiable part is dropped
			} {
				r := e.do("GET", u, nil, "Range", tc.rng)
				e.expect(r, http.StatusPartialContent, "")
				if want := fmt.Sprintf("bytes %d-%d/100", tc.start, tc.end); r.h.Get("Content-Range") != want {
					t.Errorf("%s: Content-Range %q, want %q", tc.rng, r.h.Get("Content-Range"), want)
				}
				if !bytes.Equal(r.body, data[tc.start:tc.end+1]) {
					t.Errorf("%s: wrong bytes", tc.rng)
				}
			}
			for _, rng := range []string{"bytes=100-", "bytes=100-150", "bytes=5-2", "items=0-1", "bytes=x-y", "bytes=-0"} {
				r := e.do("GET", u, nil, "Range", rng)
				e.expect(r, http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid)
				if got := r.h.Get("Content-Range"); got != "bytes */100" {
					t.Errorf("%s: Content-Range %q on 416", rng, got)
				}
				if r.h.Get("Cache-Control") != "" || r.h.Get("Etag") != "" {
					t.Errorf("%s: a 416 carries the blob's caching headers", rng)
				}
			}
			// A stale If-Range gets the whole blob.
			r := e.do("GET", u, nil, "Range", "bytes=0-9", "If-Range", `"sha256:other"`)
			e.expect(r, http.StatusOK, "")
			if !bytes.Equal(r.body, data) {
				t.Errorf("If-Range mismatch: want the whole blob")
			}
			r = e.do("GET", u, nil, "Range", "bytes=0-9", "If-Range", `"`+d.String()+`"`)
			e.expect(r, http.StatusPartialContent, "")
			// HEAD ignores Range.
			r = e.do("HEAD", u, nil, "Range", "bytes=0-9")
			e.expect(r, http.StatusOK, "")
			if r.h.Get("Content-Length") != "100" {
				t.Errorf("HEAD with Range: Content-Length %q", r.h.Get("Content-Length"))
			}
		})
	}
}

func TestBlobMultipleRanges(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 100)
	d := e.push("r", data)
	r := e.do("GET", "/v2/r/blobs/"+d.String(), nil, "Range", "bytes=0-4,90-99")
	e.expect(r, http.StatusPartialContent, "")
	mt, params, err := mime.ParseMediaType(r.h.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q, want multipart/byteranges", r.h.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var got [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		got = append(got, b)
	}
	if len(got) != 2 || !bytes.Equal(got[0], data[0:5]) || !bytes.Equal(got[1], data[90:100]) {
		t.Errorf("multipart parts wrong: %d parts", len(got))
	}

	// Without Open, several ranges get the whole blob.
	e2 := newBlobEnv(t, func(o *Options) { o.Driver = noOpener{o.Driver} })
	d = e2.push("r", data)
	r = e2.do("GET", "/v2/r/blobs/"+d.String(), nil, "Range", "bytes=0-4,90-99")
	e2.expect(r, http.StatusOK, "")
	if !bytes.Equal(r.body, data) {
		t.Errorf("want the whole blob")
	}
}

func TestBlobEmpty(t *testing.T) {
	e := newBlobEnv(t, nil)
	d := e.push("r", nil)
	if d != digest.FromBytes(nil) {
		t.Fatal(d)
	}
	r := e.do("GET", "/v2/r/blobs/"+d.String(), nil)
	e.expect(r, http.StatusOK, "")
	if len(r.body) != 0 || r.h.Get("Content-Length") != "0" {
		t.Errorf("empty blob: %d bytes, Content-Length %q", len(r.body), r.h.Get("Content-Length"))
	}
	e.expect(e.do("GET", "/v2/r/blobs/"+d.String(), nil, "Range", "bytes=0-"), 416, CodeRangeInvalid)
}

func TestBlobRedirect(t *testing.T) {
	e := newBlobEnv(t, func(o *Options) { o.Driver = redirecting{o.Driver} })
	d := e.push("r", []byte("redirect me"))
	u := "/v2/r/blobs/" + d.String()

	r := e.do("GET", u, nil)
	e.expect(r, http.StatusTemporaryRedirect, "")
	if want := "https://bucket.example.com" + storage.BlobDataPath(d) + "?signed=1"; r.h.Get("Location") != want {
		t.Errorf("Location %q, want %q", r.h.Get("Location"), want)
	}
	// HEAD never redirects: it answers from the registry.
	r = e.do("HEAD", u, nil)
	e.expect(r, http.StatusOK, "")
	if r.h.Get("Content-Length") != "11" {
		t.Errorf("HEAD Content-Length %q", r.h.Get("Content-Length"))
	}

	off := newBlobEnvAt(t, e.root, func(o *Options) {
		o.Driver = redirecting{o.Driver}
		o.RedirectDisabled = true
	})
	r = off.do("GET", u, nil)
	e.expect(r, http.StatusOK, "")
	if string(r.body) != "redirect me" {
		t.Errorf("body %q", r.body)
	}
}

func TestBlobDelete(t *testing.T) {
	e := newBlobEnv(t, nil)
	d := e.push("a", []byte("shared"))
	e.push("b", []byte("shared"))
	u := "/v2/a/blobs/" + d.String()

	r := e.do("DELETE", u, nil)
	e.expect(r, http.StatusAccepted, "")
	if r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("Docker-Content-Digest %q", r.h.Get("Docker-Content-Digest"))
	}
	e.expect(e.do("GET", u, nil), 404, CodeBlobUnknown)
	e.expect(e.do("DELETE", u, nil), 404, CodeBlobUnknown)
	// Only the link goes: the data stays for GC, and b still has it.
	if e.exists(storage.LayerLinkPath("a", d)) || e.exists(filepath.Dir(storage.LayerLinkPath("a", d))) {
		t.Errorf("a's layer link (or its folder) is still there")
	}
	if !e.exists(storage.BlobDataPath(d)) {
		t.Errorf("blob data was removed")
	}
	e.expect(e.do("GET", "/v2/b/blobs/"+d.String(), nil), 200, "")

	e.expect(e.do("DELETE", "/v2/a/blobs/sha256:bad", nil), 400, CodeDigestInvalid)

	off := newBlobEnvAt(t, e.root, func(o *Options) { o.DeleteEnabled = false })
	e.expect(off.do("DELETE", "/v2/b/blobs/"+d.String(), nil), http.StatusMethodNotAllowed, CodeUnsupported)
	e.expect(off.do("GET", "/v2/b/blobs/"+d.String(), nil), 200, "")
}

// TestBlobLayoutOnDisk pins the files an upload leaves, path for path
// and byte for byte, against CNCF Distribution's layout.
func TestBlobLayoutOnDisk(t *testing.T) {
	e := newBlobEnv(t, nil)
	repo := "group/sub/image"
	data := randomBytes(t, 300)
	d := digest.FromBytes(data)
	hex := d.Encoded()

	loc := e.startUpload(repo)
	id := loc[strings.LastIndex(loc, "/")+1:]
	up := "/docker/registry/v2/repositories/" + repo + "/_uploads/" + id
	for _, p := range []string{up + "/data", up + "/startedat", up + "/hashstates/sha256/0"} {
		if !e.exists(p) {
			t.Errorf("missing %s after POST", p)
		}
	}
	b, _ := e.file(up + "/startedat")
	if _, err := timeParseRFC3339UTC(string(b)); err != nil {
		t.Errorf("startedat %q: %v", b, err)
	}

	r := e.do("PATCH", loc, data[:100], "Content-Range", "0-99")
	e.expect(r, http.StatusAccepted, "")
	if !e.exists(up+"/hashstates/sha256/100") || e.countFiles(up) != 3 {
		t.Errorf("after PATCH want data, startedat, hashstates/sha256/100; have %d files", e.countFiles(up))
	}
	r = e.do("PUT", r.h.Get("Location")+"?digest="+d.String(), data[100:])
	e.expect(r, http.StatusCreated, "")

	blob := "/docker/registry/v2/blobs/sha256/" + hex[:2] + "/" + hex + "/data"
	link := "/docker/registry/v2/repositories/" + repo + "/_layers/sha256/" + hex + "/link"
	if got, err := e.file(blob); err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s: %v (content equal: %v)", blob, err, bytes.Equal(got, data))
	}
	if got, err := e.file(link); err != nil || string(got) != d.String() {
		t.Errorf("%s = %q (%v), want the digest with no newline", link, got, err)
	}
	if e.exists(up) {
		t.Errorf("upload folder left behind")
	}
	if n := e.countFiles("/"); n != 2 {
		t.Errorf("%d files in the root, want the blob and its link", n)
	}
	if blob != storage.BlobDataPath(d) || link != storage.LayerLinkPath(repo, d) {
		t.Errorf("storage paths disagree with the layout")
	}
}
