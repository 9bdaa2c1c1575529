package registryd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

func timeParseRFC3339UTC(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err == nil && !strings.HasSuffix(s, "Z") {
		err = fmt.Errorf("not UTC")
	}
	return t, err
}

// uploadID is the last element of an upload Location.
func uploadID(loc string) string { return loc[strings.LastIndex(loc, "/")+1:] }

func TestUploadStart(t *testing.T) {
	e := newBlobEnv(t, nil)
	r := e.do("POST", "/v2/team/app/blobs/uploads/", nil)
	e.expect(r, http.StatusAccepted, "")
	id := r.h.Get("Docker-Upload-UUID")
	if !uploadIDRE.MatchString(id) {
		t.Fatalf("Docker-Upload-UUID %q is not a v4 UUID", id)
	}
	if want := e.hs.URL + "/v2/team/app/blobs/uploads/" + id; r.h.Get("Location") != want {
		t.Errorf("Location %q, want %q", r.h.Get("Location"), want)
	}
	if r.h.Get("Range") != "0-0" || r.h.Get("Content-Length") != "0" {
		t.Errorf("Range %q Content-Length %q", r.h.Get("Range"), r.h.Get("Content-Length"))
	}
	// Without the trailing slash too.
	r2 := e.do("POST", "/v2/team/app/blobs/uploads", nil)
	e.expect(r2, http.StatusAccepted, "")
	if r2.h.Get("Docker-Upload-UUID") == id {
		t.Errorf("two uploads share an id")
	}

	rel := newBlobEnvAt(t, e.root, func(o *Options) { o.RelativeURLs = true })
	r = rel.do("POST", "/v2/team/app/blobs/uploads/", nil)
	if want := "/v2/team/app/blobs/uploads/" + r.h.Get("Docker-Upload-UUID"); r.h.Get("Location") != want {
		t.Errorf("relative Location %q, want %q", r.h.Get("Location"), want)
	}
}

func TestUploadStatusAndCancel(t *testing.T) {
	e := newBlobEnv(t, nil)
	loc := e.startUpload("r")
	r := e.do("PATCH", loc, []byte("12345"))
	e.expect(r, http.StatusAccepted, "")

	r = e.do("GET", loc, nil)
	e.expect(r, http.StatusNoContent, "")
	if r.h.Get("Range") != "0-4" || r.h.Get("Docker-Upload-UUID") != uploadID(loc) || r.h.Get("Location") != loc {
		t.Errorf("status headers: Range %q UUID %q Location %q", r.h.Get("Range"), r.h.Get("Docker-Upload-UUID"), r.h.Get("Location"))
	}

	e.expect(e.do("DELETE", loc, nil), http.StatusNoContent, "")
	if e.exists(storage.UploadDir("r", uploadID(loc))) {
		t.Errorf("upload folder left after DELETE")
	}
	e.expect(e.do("DELETE", loc, nil), 404, CodeBlobUploadUnknown)
	e.expect(e.do("GET", loc, nil), 404, CodeBlobUploadUnknown)
	e.expect(e.do("PATCH", loc, []byte("x")), 404, CodeBlobUploadUnknown)
	e.expect(e.do("PUT", loc+"?digest="+digest.FromString("12345").String(), nil), 404, CodeBlobUploadUnknown)
}

func TestUploadMalformedID(t *testing.T) {
	e := newBlobEnv(t, nil)
	loc := e.startUpload("r")
	good := uploadID(loc)
	d := digest.FromString("x").String()
	ids := []string{
		"not-a-uuid",
		"..",
		"%2e%2e",
		strings.ToUpper(good),
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8", // version 1
		"2c1b1d3a-0b8e-4f4e-8c1e-" + "zzzzzzzzzzzz",
		good + "0",
		"a2c1b1d3a-0b8e-4f4e-8c1e-1b2c3d4e5f60",
		"2c1b1d3a-0b8e-4f4e-8c1e-1b2c3d4e5f60", // well formed, unknown
	}
	for _, id := range ids {
		base := "/v2/r/blobs/uploads/" + id
		e.expect(e.do("GET", base, nil), 404, CodeBlobUploadUnknown)
		e.expect(e.do("PATCH", base, []byte("x")), 404, CodeBlobUploadUnknown)
		e.expect(e.do("PUT", base+"?digest="+d, []byte("x")), 404, CodeBlobUploadUnknown)
		e.expect(e.do("DELETE", base, nil), 404, CodeBlobUploadUnknown)
	}
	// An upload belongs to its repository.
	e.expect(e.do("GET", "/v2/other/blobs/uploads/"+good, nil), 404, CodeBlobUploadUnknown)
	e.expect(e.do("GET", loc, nil), http.StatusNoContent, "")
}

func TestUploadMonolithic(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 5000)
	d := digest.FromBytes(data)

	r := e.do("POST", "/v2/r/blobs/uploads/?digest="+d.String(), data)
	e.expect(r, http.StatusCreated, "")
	if want := e.hs.URL + "/v2/r/blobs/" + d.String(); r.h.Get("Location") != want {
		t.Errorf("Location %q, want %q", r.h.Get("Location"), want)
	}
	if r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("Docker-Content-Digest %q", r.h.Get("Docker-Content-Digest"))
	}
	got := e.do("GET", "/v2/r/blobs/"+d.String(), nil)
	if !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}
	if e.exists(storage.UploadsDir("r")) {
		t.Errorf("_uploads left behind")
	}

	// Streamed (no Content-Length) works too.
	data2 := randomBytes(t, 70000)
	d2 := digest.FromBytes(data2)
	r = e.do("POST", "/v2/r/blobs/uploads/?digest="+d2.String(), io.MultiReader(bytes.NewReader(data2)))
	e.expect(r, http.StatusCreated, "")

	// sha512.
	d512 := digest.SHA512.FromBytes(data)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/?digest="+d512.String(), data), http.StatusCreated, "")
	if b, _ := e.file(storage.BlobDataPath(d512)); !bytes.Equal(b, data) {
		t.Errorf("sha512 blob not stored under its digest")
	}
}

func TestUploadMonolithicRefused(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := []byte("some bytes")
	wrong := digest.FromString("other bytes")

	r := e.do("POST", "/v2/r/blobs/uploads/?digest="+wrong.String(), data)
	e.expect(r, http.StatusBadRequest, CodeDigestInvalid)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/?digest=sha256:123", data), http.StatusBadRequest, CodeDigestInvalid)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/?digest=", data), http.StatusBadRequest, CodeDigestInvalid)
	if e.exists(storage.BlobsRoot()) || e.exists(storage.RepositoryDir("r")) {
		t.Errorf("a refused upload left files behind")
	}

	// A body shorter than its Content-Length: the client half-closes.
	d := digest.FromBytes(data)
	conn, err := net.Dial("tcp", e.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v2/r/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n%s", d, data)
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	e.expect(result{code: resp.StatusCode, h: resp.Header, body: body}, http.StatusBadRequest, CodeSizeInvalid)

	// A body longer than its Content-Length never reaches storage. A
	// real HTTP server cuts the body itself, so call the handler.
	req := httptest.NewRequest("POST", "/v2/r/blobs/uploads/?digest="+d.String(), bytes.NewReader(append(data, "extra"...)))
	req.ContentLength = int64(len(data)) - 2
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	e.expect(result{code: rec.Code, h: rec.Header(), body: rec.Body.Bytes()}, http.StatusBadRequest, CodeSizeInvalid)

	if e.exists(storage.BlobsRoot()) || e.exists(storage.RepositoryDir("r")) {
		t.Errorf("a refused upload left files behind")
	}
}

func TestUploadNoBodyExpected(t *testing.T) {
	e := newBlobEnv(t, nil)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/", []byte("{}")), http.StatusAccepted, "")
	big := make([]byte, maxIgnoredBody+1)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/", big), http.StatusBadRequest, CodeBlobUploadInvalid)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/", io.MultiReader(bytes.NewReader(big))), http.StatusBadRequest, CodeBlobUploadInvalid)
}

func TestUploadChunked(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 30)
	d := digest.FromBytes(data)
	loc := e.startUpload("r")

	for i, cr := range []string{"0-9", "bytes=10-19"} {
		r := e.do("PATCH", loc, data[i*10:i*10+10], "Content-Range", cr, "Content-Type", "application/octet-stream")
		e.expect(r, http.StatusAccepted, "")
		if want := fmt.Sprintf("0-%d", i*10+9); r.h.Get("Range") != want {
			t.Errorf("chunk %d: Range %q, want %q", i, r.h.Get("Range"), want)
		}
		if r.h.Get("Docker-Upload-UUID") != uploadID(loc) || r.h.Get("Content-Length") != "0" || r.h.Get("Location") != loc {
			t.Errorf("chunk %d: headers %v", i, r.h)
		}
		loc = r.h.Get("Location")
	}

	// Out of order (a gap, then a repeat): 416 with where the upload is.
	for _, cr := range []string{"25-29", "0-9", "junk", "5-1"} {
		r := e.do("PATCH", loc, data[20:25], "Content-Range", cr)
		e.expect(r, http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid)
		if r.h.Get("Range") != "0-19" {
			t.Errorf("%s: 416 Range %q, want 0-19", cr, r.h.Get("Range"))
		}
	}
	// Content-Range and Content-Length disagree.
	e.expect(e.do("PATCH", loc, data[20:25], "Content-Range", "20-29"), http.StatusBadRequest, CodeSizeInvalid)
	r := e.do("GET", loc, nil)
	e.expect(r, http.StatusNoContent, "")
	if r.h.Get("Range") != "0-19" {
		t.Fatalf("refused chunks changed the upload: Range %q", r.h.Get("Range"))
	}

	r = e.do("PATCH", loc, data[20:], "Content-Range", "bytes 20-29/30")
	e.expect(r, http.StatusAccepted, "")
	if r.h.Get("Range") != "0-29" {
		t.Errorf("Range %q", r.h.Get("Range"))
	}
	r = e.do("PUT", loc+"?digest="+d.String(), nil)
	e.expect(r, http.StatusCreated, "")
	if want := e.hs.URL + "/v2/r/blobs/" + d.String(); r.h.Get("Location") != want || r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("PUT headers: %v", r.h)
	}
	if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}
	if e.exists(storage.UploadDir("r", uploadID(loc))) {
		t.Errorf("upload folder left behind")
	}
}

// TestUploadChunkBodyWrongSize streams chunks (no Content-Length) whose
// body disagrees with their Content-Range. What arrived within the range
// is kept, so the client resumes from the Range that GET reports.
func TestUploadChunkBodyWrongSize(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 40)
	d := digest.FromBytes(data)
	stream := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

	loc := e.startUpload("r")
	// Too long: the excess never reaches storage.
	e.expect(e.do("PATCH", loc, stream(data[:15]), "Content-Range", "0-9"), http.StatusBadRequest, CodeSizeInvalid)
	r := e.do("GET", loc, nil)
	if r.h.Get("Range") != "0-9" {
		t.Fatalf("after a too-long chunk: Range %q, want 0-9", r.h.Get("Range"))
	}
	// Too short: the bytes that came are kept.
	e.expect(e.do("PATCH", loc, stream(data[10:15]), "Content-Range", "10-19"), http.StatusBadRequest, CodeSizeInvalid)
	r = e.do("GET", loc, nil)
	if r.h.Get("Range") != "0-14" {
		t.Fatalf("after a short chunk: Range %q, want 0-14", r.h.Get("Range"))
	}
	// Resuming there gives the right blob: the hash state of a partial
	// chunk was not saved, so those bytes are re-hashed.
	e.expect(e.do("PATCH", loc, data[15:30], "Content-Range", "15-29"), http.StatusAccepted, "")
	e.expect(e.do("PUT", loc+"?digest="+d.String(), data[30:], "Content-Range", "30-39"), http.StatusCreated, "")
	if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}
}

func TestUploadStreamed(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 3<<20)
	d := digest.FromBytes(data)
	loc := e.startUpload("r")

	// Two streamed PATCHes (chunked encoding, no length), as docker sends.
	r := e.do("PATCH", loc, io.MultiReader(bytes.NewReader(data[:1<<20])))
	e.expect(r, http.StatusAccepted, "")
	r = e.do("PATCH", r.h.Get("Location"), io.MultiReader(bytes.NewReader(data[1<<20:])))
	e.expect(r, http.StatusAccepted, "")
	if want := fmt.Sprintf("0-%d", len(data)-1); r.h.Get("Range") != want {
		t.Errorf("Range %q, want %q", r.h.Get("Range"), want)
	}
	e.expect(e.do("PUT", r.h.Get("Location")+"?digest="+d.String(), nil), http.StatusCreated, "")
	if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}
}

func TestUploadPutWithLastChunk(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 64)
	d := digest.FromBytes(data)

	loc := e.startUpload("r")
	e.expect(e.do("PATCH", loc, data[:40], "Content-Range", "0-39"), http.StatusAccepted, "")
	// A wrong range on the last chunk is refused and commits nothing.
	r := e.do("PUT", loc+"?digest="+d.String(), data[40:], "Content-Range", "0-23")
	e.expect(r, http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid)
	r = e.do("PUT", loc+"?digest="+d.String(), data[40:], "Content-Range", "40-63")
	e.expect(r, http.StatusCreated, "")
	if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}

	// POST then a PUT with the whole blob and no Content-Range.
	data2 := randomBytes(t, 64)
	d2 := digest.FromBytes(data2)
	loc = e.startUpload("r")
	e.expect(e.do("PUT", loc+"?digest="+d2.String(), data2), http.StatusCreated, "")
	if got := e.do("GET", "/v2/r/blobs/"+d2.String(), nil); !bytes.Equal(got.body, data2) {
		t.Errorf("pulled bytes differ")
	}
}

func TestUploadSHA512(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 1000)
	d := digest.SHA512.FromBytes(data)
	loc := e.startUpload("r")
	r := e.do("PATCH", loc, data[:500], "Content-Range", "0-499")
	e.expect(r, http.StatusAccepted, "")
	r = e.do("PUT", r.h.Get("Location")+"?digest="+d.String(), data[500:], "Content-Range", "500-999")
	e.expect(r, http.StatusCreated, "")
	if r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("Docker-Content-Digest %q", r.h.Get("Docker-Content-Digest"))
	}
	got := e.do("GET", "/v2/r/blobs/"+d.String(), nil)
	e.expect(got, http.StatusOK, "")
	if !bytes.Equal(got.body, data) {
		t.Errorf("pulled bytes differ")
	}
	if b, _ := e.file(storage.LayerLinkPath("r", d)); string(b) != d.String() {
		t.Errorf("link %q", b)
	}
}

func TestUploadDigestMismatch(t *testing.T) {
	for _, wrong := range []digest.Digest{digest.FromString("other"), digest.SHA512.FromString("other")} {
		t.Run(wrong.Algorithm().String(), func(t *testing.T) {
			e := newBlobEnv(t, nil)
			loc := e.startUpload("r")
			e.expect(e.do("PATCH", loc, []byte("payload")), http.StatusAccepted, "")
			r := e.do("PUT", loc+"?digest="+wrong.String(), nil)
			e.expect(r, http.StatusBadRequest, CodeDigestInvalid)
			if e.exists(storage.BlobsRoot()) {
				t.Errorf("a mismatched upload reached blobs/")
			}
			if e.exists(storage.LayersDir("r")) {
				t.Errorf("a mismatched upload was linked")
			}
			// The upload is gone.
			e.expect(e.do("GET", loc, nil), 404, CodeBlobUploadUnknown)
			if e.exists(storage.UploadDir("r", uploadID(loc))) {
				t.Errorf("upload folder left behind")
			}
		})
	}
}

func TestUploadPutDigestMissingOrInvalid(t *testing.T) {
	e := newBlobEnv(t, nil)
	loc := e.startUpload("r")
	e.expect(e.do("PATCH", loc, []byte("payload")), http.StatusAccepted, "")
	for _, q := range []string{"", "?digest=", "?digest=sha256:zz", "?digest=md5:d41d8cd98f00b204e9800998ecf8427e"} {
		e.expect(e.do("PUT", loc+q, []byte("more")), http.StatusBadRequest, CodeDigestInvalid)
	}
	// The upload survives a bad request, untouched.
	r := e.do("GET", loc, nil)
	e.expect(r, http.StatusNoContent, "")
	if r.h.Get("Range") != "0-6" {
		t.Errorf("Range %q", r.h.Get("Range"))
	}
	e.expect(e.do("PUT", loc+"?digest="+digest.FromString("payload").String(), nil), http.StatusCreated, "")
}

// TestUploadResumeAfterRestart runs each request of one upload on a new
// server over the same root: the state must all be in storage.
func TestUploadResumeAfterRestart(t *testing.T) {
	data := randomBytes(t, 90)
	d := digest.FromBytes(data)
	tests := []struct {
		name    string
		between func(t *testing.T, e *blobEnv, id string)
	}{
		{"with hash states", nil},
		{"hash states lost", func(t *testing.T, e *blobEnv, id string) {
			os.RemoveAll(filepath.Join(e.root, filepath.FromSlash(hashStateDir("r", id))))
		}},
		{"corrupt hash state", func(t *testing.T, e *blobEnv, id string) {
			dir := filepath.Join(e.root, filepath.FromSlash(hashStateDir("r", id)))
			ents, _ := os.ReadDir(dir)
			for _, ent := range ents {
				os.WriteFile(filepath.Join(dir, ent.Name()), []byte("garbage"), 0o644)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			first := newBlobEnvAt(t, root, nil)
			loc := first.startUpload("r")
			id := uploadID(loc)
			path := "/v2/r/blobs/uploads/" + id
			e := first
			for i := range 3 {
				if tc.between != nil {
					tc.between(t, e, id)
				}
				e.hs.Close()
				e = newBlobEnvAt(t, root, nil)
				r := e.do("PATCH", path, data[i*30:i*30+30], "Content-Range", fmt.Sprintf("%d-%d", i*30, i*30+29))
				e.expect(r, http.StatusAccepted, "")
			}
			if tc.between != nil {
				tc.between(t, e, id)
			}
			e.hs.Close()
			e = newBlobEnvAt(t, root, nil)
			e.expect(e.do("PUT", path+"?digest="+d.String(), nil), http.StatusCreated, "")
			if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
				t.Errorf("pulled bytes differ")
			}
		})
	}
}

// TestResumeSHA256 checks the choice of saved state directly.
func TestResumeSHA256(t *testing.T) {
	e := newBlobEnv(t, nil)
	ctx := context.Background()
	loc := e.startUpload("r")
	id := uploadID(loc)
	data := randomBytes(t, 60)
	e.expect(e.do("PATCH", loc, data[:30], "Content-Range", "0-29"), http.StatusAccepted, "")

	// A state beyond the data (its bytes were lost) is dropped, never
	// used, and one below the size is completed from the data.
	stale := digest.SHA256.Hash()
	stale.Write(bytes.Repeat([]byte("x"), 45))
	if err := e.srv.saveHashState(ctx, "r", id, 45, stale); err != nil {
		t.Fatal(err)
	}
	h, err := e.srv.resumeSHA256(ctx, "r", id, 30)
	if err != nil || digest.NewDigest(digest.SHA256, h) != digest.FromBytes(data[:30]) {
		t.Fatalf("resume at 30: %v", err)
	}
	if e.exists(storage.UploadHashStatePath("r", id, digest.SHA256, 45)) {
		t.Errorf("stale state at 45 kept")
	}

	e.expect(e.do("PATCH", loc, data[30:], "Content-Range", "30-59"), http.StatusAccepted, "")
	// Keep only the state at 30: resuming at 60 hashes bytes 30..59.
	if err := e.srv.saveHashState(ctx, "r", id, 30, mustResume(t, e, id, 30)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(e.root, filepath.FromSlash(storage.UploadHashStatePath("r", id, digest.SHA256, 60))))
	h, err = e.srv.resumeSHA256(ctx, "r", id, 60)
	if err != nil || digest.NewDigest(digest.SHA256, h) != digest.FromBytes(data) {
		t.Fatalf("resume at 60 from 30: %v", err)
	}
}

func mustResume(t *testing.T, e *blobEnv, id string, size int64) hash.Hash {
	t.Helper()
	h, err := e.srv.resumeSHA256(context.Background(), "r", id, size)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestUploadHashStatesPruned(t *testing.T) {
	e := newBlobEnv(t, nil)
	loc := e.startUpload("r")
	id := uploadID(loc)
	for i := range 4 {
		e.expect(e.do("PATCH", loc, []byte("0123456789"), "Content-Range", fmt.Sprintf("%d-%d", i*10, i*10+9)), http.StatusAccepted, "")
	}
	offs, err := e.srv.hashStateOffsets(context.Background(), "r", id)
	if err != nil || len(offs) != 1 || offs[0] != 40 {
		t.Errorf("hash states %v (%v), want only 40", offs, err)
	}
}

func TestUploadMount(t *testing.T) {
	e := newBlobEnv(t, nil)
	d := e.push("src/repo", []byte("layer"))

	r := e.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src/repo", nil)
	e.expect(r, http.StatusCreated, "")
	if want := e.hs.URL + "/v2/dst/blobs/" + d.String(); r.h.Get("Location") != want || r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("mount headers: %v", r.h)
	}
	if b, _ := e.file(storage.LayerLinkPath("dst", d)); string(b) != d.String() {
		t.Errorf("mount link %q", b)
	}
	e.expect(e.do("GET", "/v2/dst/blobs/"+d.String(), nil), http.StatusOK, "")

	// Without from: the blob is in the store, so it mounts.
	r = e.do("POST", "/v2/nofrom/blobs/uploads/?mount="+d.String(), nil)
	e.expect(r, http.StatusCreated, "")
	e.expect(e.do("HEAD", "/v2/nofrom/blobs/"+d.String(), nil), http.StatusOK, "")

	// Not mountable: an upload starts instead.
	unknown := digest.FromString("unknown")
	for _, q := range []string{
		"?mount=" + d.String() + "&from=elsewhere", // not linked there
		"?mount=" + unknown.String() + "&from=src/repo",
		"?mount=" + unknown.String(),
	} {
		r = e.do("POST", "/v2/third/blobs/uploads/"+q, nil)
		e.expect(r, http.StatusAccepted, "")
		if !uploadIDRE.MatchString(r.h.Get("Docker-Upload-UUID")) || !strings.Contains(r.h.Get("Location"), "/v2/third/blobs/uploads/") {
			t.Errorf("%s: fallback headers %v", q, r.h)
		}
	}
	if e.exists(storage.LayerLinkPath("third", d)) {
		t.Errorf("a failed mount linked the blob")
	}
	// Falling back with a digest is a monolithic upload.
	data := []byte("fallback body")
	fd := digest.FromBytes(data)
	r = e.do("POST", "/v2/third/blobs/uploads/?mount="+fd.String()+"&from=src/repo&digest="+fd.String(), data)
	e.expect(r, http.StatusCreated, "")

	e.expect(e.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=Bad/Name", nil), http.StatusBadRequest, CodeNameInvalid)
	e.expect(e.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=../src", nil), http.StatusBadRequest, CodeNameInvalid)
	e.expect(e.do("POST", "/v2/dst/blobs/uploads/?mount=sha256:nope&from=src/repo", nil), http.StatusBadRequest, CodeDigestInvalid)
}

func TestUploadConcurrentSameBlob(t *testing.T) {
	e := newBlobEnv(t, nil)
	data := randomBytes(t, 200<<10)
	d := digest.FromBytes(data)

	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half into one repository, half into their own.
			repo := "shared"
			if i%2 == 1 {
				repo = fmt.Sprintf("own%d", i)
			}
			status := func(method, u string, body []byte, want int, hdr ...string) http.Header {
				req, _ := http.NewRequest(method, u, bytes.NewReader(body))
				for j := 0; j+1 < len(hdr); j += 2 {
					req.Header.Set(hdr[j], hdr[j+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return nil
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != want {
					errs <- fmt.Sprintf("%s %s: %d %s", method, u, resp.StatusCode, b)
					return nil
				}
				return resp.Header
			}
			h := status("POST", e.hs.URL+"/v2/"+repo+"/blobs/uploads/", nil, http.StatusAccepted)
			if h == nil {
				return
			}
			h = status("PATCH", h.Get("Location"), data[:100<<10], http.StatusAccepted, "Content-Range", fmt.Sprintf("0-%d", 100<<10-1))
			if h == nil {
				return
			}
			status("PUT", h.Get("Location")+"?digest="+d.String(), data[100<<10:], http.StatusCreated)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b, _ := e.file(storage.BlobDataPath(d)); !bytes.Equal(b, data) {
		t.Errorf("blob data wrong")
	}
	if n := e.countFiles(storage.BlobsRoot()); n != 1 {
		t.Errorf("%d files under blobs/, want 1", n)
	}
	for _, repo := range []string{"shared", "own1", "own9"} {
		if got := e.do("GET", "/v2/"+repo+"/blobs/"+d.String(), nil); !bytes.Equal(got.body, data) {
			t.Errorf("%s: pulled bytes differ", repo)
		}
		if e.exists(storage.UploadsDir(repo)) {
			t.Errorf("%s: uploads left behind", repo)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-9", 0, 9, true},
		{"10-10", 10, 10, true},
		{"bytes=5-9", 5, 9, true},
		{"bytes 5-9/100", 5, 9, true},
		{"bytes 5-9/*", 5, 9, true},
		{"9-5", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
		{"-1-5", 0, 0, false},
	} {
		s, e, err := parseContentRange(tc.in)
		if (err == nil) != tc.ok || s != tc.start || e != tc.end {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tc.in, s, e, err)
		}
	}
}

func TestNewUploadID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newUploadID()
		if !uploadIDRE.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
