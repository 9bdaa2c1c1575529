package storage_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
	"regctl/pkg/storage/drivertest"
)

// The S3 driver runs against a real S3 server, versitygw: one gateway per
// test, a bucket per driver.

func s3Params(g *testtools.VersityGW, bucket string, extra map[string]any) map[string]any {
	params := map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": bucket, "pathstyle": true,
	}
	maps.Copy(params, extra)
	return params
}

func newS3(t *testing.T, g *testtools.VersityGW, bucket string, extra map[string]any) *storage.S3 {
	t.Helper()
	d, err := storage.NewS3(t.Context(), s3Params(g, bucket, extra))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestS3Driver(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	t.Run("root", func(t *testing.T) {
		drivertest.Run(t, func(t *testing.T) storage.Driver { return newS3(t, g, g.Bucket(t), nil) })
	})
	// Small parts, copy thresholds and listing pages, so the suite's
	// writes, moves and listings take the multipart and paging paths too.
	t.Run("rootdirectory", func(t *testing.T) {
		drivertest.Run(t, func(t *testing.T) storage.Driver {
			d := newS3(t, g, g.Bucket(t), map[string]any{
				"rootdirectory": "/registry/", "chunksize": 5 << 20,
				"multipartcopythresholdsize": 1, "multipartcopychunksize": 5 << 20,
			})
			storage.SetS3ListPageSize(d, 2)
			return d
		})
	})
}

// rawKeys lists a bucket's keys straight from S3.
func rawKeys(t *testing.T, d *storage.S3) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(storage.S3Client(d), &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket())})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// multipartUploads counts the bucket's unfinished multipart uploads.
func multipartUploads(t *testing.T, d *storage.S3) int {
	t.Helper()
	out, err := storage.S3Client(d).ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(d.Bucket())})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func TestS3KeyLayout(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	const blob = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
	for _, tc := range []struct {
		root string
		want string
	}{
		{"", "docker/registry/v2/blobs/sha256/ab/abcd/data"},
		{"registry", "registry/docker/registry/v2/blobs/sha256/ab/abcd/data"},
		{"/registry/", "registry/docker/registry/v2/blobs/sha256/ab/abcd/data"},
		{"a/b", "a/b/docker/registry/v2/blobs/sha256/ab/abcd/data"},
	} {
		t.Run("root="+tc.root, func(t *testing.T) {
			d := newS3(t, g, g.Bucket(t), map[string]any{"rootdirectory": tc.root})
			if err := d.PutContent(t.Context(), blob, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if got := rawKeys(t, d); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("keys = %q, want %q", got, tc.want)
			}
			// A write in progress keeps its state next to the key, and
			// List shows the file, never the state.
			w, err := d.Writer(t.Context(), "/docker/registry/v2/up/data", false)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("abc"))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			up := strings.TrimSuffix(tc.want, "blobs/sha256/ab/abcd/data") + "up/data"
			want := []string{tc.want, up + ".regctl-pending", up + ".regctl-upload"}
			if got := rawKeys(t, d); !slices.Equal(got, want) {
				t.Errorf("keys = %q, want %q", got, want)
			}
			got, err := d.List(t.Context(), "/docker/registry/v2/up")
			if err != nil || !slices.Equal(got, []string{"/docker/registry/v2/up/data"}) {
				t.Errorf("List = %q, %v", got, err)
			}
		})
	}
}

// Three driver instances stand for three nodes: each session of one
// upload runs on another, with only the bucket in common.
func TestS3AppendAcrossNodes(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	extra := map[string]any{"chunksize": 5 << 20}
	nodes := []*storage.S3{newS3(t, g, bucket, extra), newS3(t, g, bucket, extra), newS3(t, g, bucket, extra)}
	ctx := t.Context()
	const p = "/docker/registry/v2/repositories/r/_uploads/u/data"
	chunks := [][]byte{pattern(6<<20, 1), {42}, pattern(7<<20, 2)}
	var all []byte
	for i, chunk := range chunks {
		d := nodes[i]
		w, err := d.Writer(ctx, p, i > 0)
		if err != nil {
			t.Fatalf("node %d: Writer: %v", i, err)
		}
		if w.Size() != int64(len(all)) {
			t.Fatalf("node %d: Size = %d, want %d", i, w.Size(), len(all))
		}
		if n, err := w.Write(chunk); err != nil || n != len(chunk) {
			t.Fatalf("node %d: Write = %d, %v", i, n, err)
		}
		all = append(all, chunk...)
		if i < len(chunks)-1 {
			if err := w.Close(); err != nil {
				t.Fatalf("node %d: Close: %v", i, err)
			}
			// Another node sees the upload's size (the upload status
			// endpoint needs it), and the upload in List and Walk.
			other := nodes[(i+1)%len(nodes)]
			fi, err := other.Stat(ctx, p)
			if err != nil || fi.Size != int64(len(all)) || fi.IsDir {
				t.Errorf("after session %d: Stat = %+v, %v; want a file of %d bytes", i, fi, err, len(all))
			}
			var walked []storage.FileInfo
			err = other.Walk(ctx, "/docker/registry/v2/repositories/r/_uploads", func(fi storage.FileInfo) error {
				walked = append(walked, fi)
				return nil
			})
			if err != nil || len(walked) != 2 || walked[1].Path != p || walked[1].Size != int64(len(all)) {
				t.Errorf("after session %d: Walk = %+v, %v", i, walked, err)
			}
			if _, err := other.Reader(ctx, p, 0); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Reader of an upload in progress: %v, want ErrNotFound", err)
			}
			if n := multipartUploads(t, d); n != 1 {
				t.Errorf("after session %d: %d multipart uploads, want 1", i, n)
			}
			continue
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	r, err := nodes[0].Reader(ctx, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Errorf("read back %d bytes that differ from the %d written", len(got), len(all))
	}
	if n := multipartUploads(t, nodes[0]); n != 0 {
		t.Errorf("%d multipart uploads left after Commit", n)
	}
	if keys := rawKeys(t, nodes[0]); !slices.Equal(keys, []string{strings.TrimPrefix(p, "/")}) {
		t.Errorf("keys after Commit = %q: state objects left", keys)
	}
	if _, err := nodes[1].Writer(ctx, "/missing", true); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Writer(missing, append): %v, want ErrNotFound", err)
	}
}

// pattern is n bytes that differ with seed and at every offset.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestS3CancelAndReplace(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	d := newS3(t, g, g.Bucket(t), map[string]any{"chunksize": 5 << 20})
	ctx := t.Context()
	start := func(p string) {
		t.Helper()
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pattern(6<<20, 3)) // one part uploaded, a tail pending
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n := multipartUploads(t, d); n != 1 {
			t.Fatalf("%d multipart uploads, want 1", n)
		}
	}

	// Cancel aborts the upload, earlier sessions included.
	start("/c/data")
	w, err := d.Writer(ctx, "/c/data", true)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("more"))
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if n := multipartUploads(t, d); n != 0 {
		t.Errorf("%d multipart uploads left after Cancel", n)
	}
	if keys := rawKeys(t, d); len(keys) != 0 {
		t.Errorf("keys left after Cancel: %q", keys)
	}

	// Writer(append=false) replaces a write in progress.
	start("/r/data")
	w, err = d.Writer(ctx, "/r/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := multipartUploads(t, d); n != 0 {
		t.Errorf("%d multipart uploads left after a new Writer", n)
	}
	w.Write([]byte("x"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := d.GetContent(ctx, "/r/data"); err != nil || string(b) != "x" {
		t.Errorf("replaced write = %q, %v", b, err)
	}

	// Deleting an upload's folder (the purger) aborts its upload too.
	start("/u/id/data")
	if err := d.Delete(ctx, "/u/id"); err != nil {
		t.Fatal(err)
	}
	if n := multipartUploads(t, d); n != 0 {
		t.Errorf("%d multipart uploads left after Delete", n)
	}
	if keys := rawKeys(t, d); !slices.Equal(keys, []string{"r/data"}) {
		t.Errorf("keys after Delete = %q", keys)
	}
}

func TestS3RedirectURL(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	d := newS3(t, g, g.Bucket(t), map[string]any{"rootdirectory": "registry"})
	content := pattern(100<<10, 4)
	const p = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
	if err := d.PutContent(t.Context(), p, content); err != nil {
		t.Fatal(err)
	}
	var rd storage.Redirector = d
	u, err := rd.RedirectURL(httptest.NewRequest(http.MethodGet, "/v2/r/blobs/sha256:abcd", nil), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Expires=1200") {
		t.Errorf("URL %s does not expire in 20 minutes", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("GET presigned URL = %s, %d bytes; want 200 and the %d bytes stored", resp.Status, len(got), len(content))
	}
}

// AWS DataSync leaves a 0-byte "folder/" key for every folder it copies;
// registries have shown the one of tags/ as a tag with an empty name.
func TestS3IgnoresFolderMarkers(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	d := newS3(t, g, g.Bucket(t), nil)
	ctx := t.Context()
	const tags = "/docker/registry/v2/repositories/r/_manifests/tags"
	if err := d.PutContent(ctx, tags+"/v1/current/link", []byte("sha256:x")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"docker/registry/v2/repositories/r/_manifests/tags/", "docker/registry/v2/repositories/r/_manifests/tags/v1/", "docker/registry/v2/repositories/r/_manifests/tags/v1/current/"} {
		_, err := storage.S3Client(d).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.Bucket()), Key: aws.String(k), Body: bytes.NewReader(nil)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.List(ctx, tags); err != nil || !slices.Equal(got, []string{tags + "/v1"}) {
		t.Errorf("List(tags) = %q, %v; want only v1", got, err)
	}
	var walked []string
	err := d.Walk(ctx, "/docker/registry/v2/repositories/r", func(fi storage.FileInfo) error {
		walked = append(walked, fi.Path)
		return nil
	})
	want := []string{"/docker/registry/v2/repositories/r/_manifests", tags, tags + "/v1", tags + "/v1/current", tags + "/v1/current/link"}
	if err != nil || !slices.Equal(walked, want) {
		t.Errorf("Walk = %q, %v; want %q", walked, err, want)
	}
	// Once the tag is gone, the markers alone make no folder.
	if err := d.Delete(ctx, tags+"/v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, tags); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(tags) with only a marker left: %v, want ErrNotFound", err)
	}
	if got, err := d.List(ctx, tags); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("List(tags) with only a marker left = %q, %v; want ErrNotFound", got, err)
	}
}

func TestS3StartupErrors(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		setting string
	}{
		{"wrong secret key", map[string]any{"secretkey": "wrong"}, "storage.s3.accesskey/secretkey"},
		{"wrong access key", map[string]any{"accesskey": "nobody"}, "storage.s3.accesskey/secretkey"},
		{"wrong region", map[string]any{"region": "eu-west-1"}, "storage.s3.region"},
		{"missing bucket", map[string]any{"bucket": "no-such-bucket"}, "storage.s3.bucket"},
		{"unreachable endpoint", map[string]any{"regionendpoint": "http://" + testtools.FreeAddr(t)}, "storage.s3.regionendpoint"},
		{"no region", map[string]any{"region": ""}, "storage.s3.region"},
		{"bad checksum", map[string]any{"checksum": "always"}, "storage.s3.checksum"},
		{"small chunksize", map[string]any{"chunksize": 1 << 20}, "storage.s3.chunksize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := storage.NewS3(t.Context(), s3Params(g, bucket, tc.extra))
			if err == nil {
				t.Fatal("NewS3 succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.setting+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error = %q; want one line starting with %q", msg, tc.setting+": ")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
			t.Log(msg)
		})
	}
	// The health check passes on a good bucket, and says so when the
	// bucket goes away.
	gone := g.Bucket(t)
	d := newS3(t, g, gone, nil)
	if err := d.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := os.Remove(filepath.Join(g.Dir, gone)); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "storage.s3.bucket: ") {
		t.Errorf("Check of a removed bucket: %v, want an error naming storage.s3.bucket", err)
	}
}

func TestS3MaxRequestsPerSecond(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	ctx := t.Context()
	const rps, requests = 20, 21
	d := newS3(t, g, bucket, map[string]any{"maxrequestspersecond": rps})
	if err := d.PutContent(ctx, "/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Concurrent GETs: one request each, spaced 1/rps apart.
	start := time.Now()
	errs := make(chan error, requests)
	for range requests {
		go func() {
			_, err := d.GetContent(ctx, "/f")
			errs <- err
		}()
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if min := time.Duration(requests-1) * time.Second / rps; took < min-50*time.Millisecond || took > 5*min {
		t.Errorf("%d requests at %d/s took %v, want about %v", requests, rps, took, min)
	}

	// A redirect URL is only signed, not sent: no wait.
	start = time.Now()
	for range 5 {
		if _, err := d.RedirectURL(httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil), "/f"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("5 presigns took %v: they went through the request limit", took)
	}
}

// when_supported makes the SDK send CRC32 checksums (trailers on
// streamed bodies) and check those of responses; versitygw takes them.
func TestS3ChecksumWhenSupported(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	d := newS3(t, g, g.Bucket(t), map[string]any{"checksum": "when_supported", "chunksize": 5 << 20})
	ctx := t.Context()
	data := pattern(11<<20, 5)
	w, err := d.Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/g", []byte("small")); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/g", "/h"); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/f")
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("GetContent = %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	if err := d.Delete(ctx, "/h"); err != nil {
		t.Fatal(err)
	}
}

func TestS3ListFiles(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	d := newS3(t, g, bucket, map[string]any{"rootdirectory": "reg"})
	storage.SetS3ListPageSize(d, 3) // several pages
	ctx := t.Context()
	files := map[string]string{ // path: content
		"/top/a&b":            "ampersand",
		"/top/x<y>z":          "angles",
		`/top/q"u'o`:          "quotes",
		"/top/été/日本/😀":       "unicode",
		"/top/sp ace+plus%41": "",
		"/top/tab\tnl\nend":   "control characters, sent as references",
		"/top/deep/er/f":      strings.Repeat("x", 4096),
		"/other/f":            "not below /top",
	}
	for p, content := range files {
		if err := d.PutContent(ctx, p, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	// Skipped: folder markers and upload state, put there directly.
	for _, k := range []string{"reg/top/", "reg/top/deep/", "reg/top/w.regctl-upload", "reg/top/w.regctl-pending"} {
		if _, err := storage.S3Client(d).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("")}); err != nil {
			t.Fatal(err)
		}
	}

	got := map[string]string{}
	err := d.ListFiles(ctx, "/top", func(fi storage.FileInfo, sum string) error {
		content, ok := files[fi.Path]
		switch {
		case !ok:
			t.Errorf("listed %q", fi.Path)
		case fi.Size != int64(len(content)):
			t.Errorf("%q: size %d, want %d", fi.Path, fi.Size, len(content))
		case time.Since(fi.ModTime) > time.Hour || time.Until(fi.ModTime) > time.Minute:
			t.Errorf("%q: modified %v", fi.Path, fi.ModTime)
		}
		got[fi.Path] = sum
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		if !strings.HasPrefix(p, "/top/") {
			continue
		}
		if want := fmt.Sprintf("%x", md5.Sum([]byte(content))); got[p] != want {
			t.Errorf("%q: md5 %q, want %q", p, got[p], want)
		}
	}
	if len(got) != len(files)-1 {
		t.Errorf("listed %d files, want %d", len(got), len(files)-1)
	}

	// A stop asked for by fn ends the listing with fn's error.
	stop := errors.New("stop")
	n := 0
	if err := d.ListFiles(ctx, "/top", func(storage.FileInfo, string) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ListFiles with fn failing: %v after %d calls", err, n)
	}
	// Nothing there: no files, no error.
	if err := d.ListFiles(ctx, "/nothing/here", func(fi storage.FileInfo, _ string) error {
		t.Errorf("listed %q", fi.Path)
		return nil
	}); err != nil {
		t.Errorf("ListFiles(/nothing/here): %v", err)
	}
	// Encrypted with KMS, ETags are no MD5s.
	storage.SetS3KMS(d, "some-key")
	if err := d.ListFiles(ctx, "/top/deep", func(fi storage.FileInfo, sum string) error {
		if sum != "" {
			t.Errorf("%q: md5 %q under SSE-KMS", fi.Path, sum)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A bucket gone is an error, not an empty listing.
	if err := os.RemoveAll(filepath.Join(g.Dir, bucket)); err != nil {
		t.Fatal(err)
	}
	err = d.ListFiles(ctx, "/top", func(storage.FileInfo, string) error { return nil })
	if err == nil || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("ListFiles of a removed bucket: %v, want a NoSuchBucket error", err)
	}
}
