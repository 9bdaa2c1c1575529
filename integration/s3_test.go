package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// regctl serve on S3: every node runs against a bucket of a real S3
// server (versitygw on loopback), as a cluster would.

// s3Node is the config.yml of a regctl serve node on a versitygw bucket.
type s3Node struct {
	GW         *testtools.VersityGW
	Bucket     string
	Addr       string
	Level      string // log.level, default warn
	NoRedirect bool   // storage.redirect.disable
	// Purge turns upload purging on with age 1s and interval 1s; without
	// it purging is off, so a node never removes another test's uploads.
	Purge bool
	// Overrides of the gateway's values, for broken setups.
	AccessKey, SecretKey, Endpoint string
}

func (n s3Node) yaml() string {
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: %s\nstorage:\n  s3:\n", or(n.Level, "warn"))
	fmt.Fprintf(&b, "    accesskey: %s\n    secretkey: %s\n", strconv.Quote(or(n.AccessKey, n.GW.AccessKey)), strconv.Quote(or(n.SecretKey, n.GW.SecretKey)))
	fmt.Fprintf(&b, "    region: %s\n    regionendpoint: %s\n", n.GW.Region, or(n.Endpoint, n.GW.Endpoint))
	fmt.Fprintf(&b, "    bucket: %s\n    forcepathstyle: true\n", n.Bucket)
	fmt.Fprintf(&b, "  delete:\n    enabled: true\n  redirect:\n    disable: %t\n", n.NoRedirect)
	if n.Purge {
		b.WriteString("  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 1s\n      interval: 1s\n      dryrun: false\n")
	} else {
		b.WriteString("  maintenance:\n    uploadpurging:\n      enabled: false\n")
	}
	fmt.Fprintf(&b, "http:\n  addr: %s\n", n.Addr)
	return b.String()
}

// write writes the config into a fresh folder and returns its path.
func (n s3Node) write(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(n.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startS3Node runs regctl serve with n's config until the test ends.
func startS3Node(t *testing.T, n s3Node) *testtools.Process {
	t.Helper()
	return startServeT(t, n.write(t), n.Addr)
}

// newS3Node is a node on bucket of g, on a free loopback port.
func newS3Node(t *testing.T, g *testtools.VersityGW, bucket string) s3Node {
	t.Helper()
	return s3Node{GW: g, Bucket: bucket, Addr: testtools.FreeAddr(t)}
}

// s3Driver opens bucket as regctl does, for looking into it directly.
func s3Driver(t *testing.T, g *testtools.VersityGW, bucket string) *storage.S3 {
	t.Helper()
	d, err := storage.NewS3(t.Context(), map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": bucket, "forcepathstyle": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	clients.Store(d, g.Client())
	return d
}

// clients holds an SDK client of the gateway of each driver s3Driver
// opened, to look at the bucket behind the driver's back.
var clients sync.Map // *storage.S3 -> *s3.Client

func clientOf(d *storage.S3) *s3.Client {
	c, _ := clients.Load(d)
	return c.(*s3.Client)
}

// multipartUploads lists the keys of the multipart uploads in progress
// under prefix.
func multipartUploads(t *testing.T, d *storage.S3, prefix string) []string {
	t.Helper()
	out, err := clientOf(d).ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(d.Bucket()), Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// objectKeys lists the keys under prefix (one page is plenty here).
func objectKeys(t *testing.T, d *storage.S3, prefix string) []string {
	t.Helper()
	out, err := clientOf(d).ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{
		Bucket: aws.String(d.Bucket()), Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// uploadKeyPrefix is the bucket prefix of an upload's folder (the driver
// is opened without rootdirectory).
func uploadKeyPrefix(repo, id string) string {
	return strings.TrimPrefix(storage.UploadDir(repo, id), "/") + "/"
}

// followClient follows redirects, to the bucket's presigned URLs too.
var followClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// getBlob downloads a blob from addr as a client does, following a
// redirect to the bucket; rng is a Range header or "".
func getBlob(t *testing.T, addr, repo, digest, rng string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := followClient.Do(req)
	if err != nil {
		t.Fatalf("GET blob %s: %v", digest, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET blob %s: reading: %v", digest, err)
	}
	return resp, b
}

// checkBlobDelivery checks that a node serves blobs the way its config
// says: a 307 to a presigned URL of its bucket, or the bytes themselves;
// that a range is honoured on both paths, by the bucket when redirected;
// and that an unsatisfiable range gets the registry's own 416 either way.
func checkBlobDelivery(t *testing.T, n s3Node) {
	t.Helper()
	data := randomBytes(t, 64<<10)
	const repo = "mode/check"
	d := pushBlob(t, n.Addr, repo, data)

	resp, _ := do(t, http.MethodGet, n.Addr, "/v2/"+repo+"/blobs/"+d, nil, nil)
	loc := resp.Header.Get("Location")
	if n.NoRedirect {
		if resp.StatusCode != http.StatusOK {
			t.Errorf("redirect.disable: GET blob = %s (Location %q), want 200 with the bytes", resp.Status, loc)
		}
	} else if want := n.GW.Endpoint + "/" + n.Bucket + "/"; resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, want) {
		t.Errorf("redirecting: GET blob = %s, Location %q; want 307 to %s...", resp.Status, loc, want)
	}

	resp, b := getBlob(t, n.Addr, repo, d, "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
		t.Errorf("GET blob (following redirects) = %s, %d bytes, equal %t", resp.Status, len(b), bytes.Equal(b, data))
	}
	resp, b = getBlob(t, n.Addr, repo, d, "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[10:20]) {
		t.Errorf("GET blob bytes=10-19 = %s, %q; want 206 with the 10 bytes", resp.Status, b)
	}
	// Checked by the registry before any redirect.
	resp, body := do(t, http.MethodGet, n.Addr, "/v2/"+repo+"/blobs/"+d, nil, map[string]string{"Range": "bytes=999999-"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || decodeOCIError(t, body).Code != "RANGE_INVALID" {
		t.Errorf("unsatisfiable range = %s %s, want 416 RANGE_INVALID", resp.Status, body)
	}
}

// TestS3OCIConformance runs the whole OCI conformance suite against
// regctl serve on S3, once redirecting blob GETs to the bucket (the
// default) and once serving them itself (storage.redirect.disable).
// Every test must pass and none may be skipped, in both modes.
func TestS3OCIConformance(t *testing.T) {
	testtools.Tool(t, "conformance")
	g := testtools.NewVersityGW(t)
	for _, mode := range []struct {
		name       string
		noRedirect bool
	}{{"redirect", false}, {"redirect.disable", true}} {
		t.Run(mode.name, func(t *testing.T) {
			n := newS3Node(t, g, g.Bucket(t))
			n.NoRedirect = mode.noRedirect
			startS3Node(t, n)
			checkBlobDelivery(t, n)
			runConformance(t, n.Addr).requireAllPass(t)
		})
	}
}

// TestS3TwoNodes runs two regctl serve nodes on one bucket: what one
// accepts, the other serves, uploads in progress included. Node A
// redirects blob GETs to the bucket, node B serves them itself.
func TestS3TwoNodes(t *testing.T) {
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	a, b := newS3Node(t, g, bucket), newS3Node(t, g, bucket)
	b.NoRedirect = true
	startS3Node(t, a)
	startS3Node(t, b)

	t.Run("multi-arch image", func(t *testing.T) {
		// Two platforms, as docker buildx pushes them.
		var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		images := map[string]v1.Image{}
		for _, arch := range []string{"amd64", "arm64"} {
			img, err := random.Image(256<<10, 3)
			if err != nil {
				t.Fatal(err)
			}
			img = mutate.MediaType(img, types.OCIManifestSchema1)
			images[arch] = img
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
			})
		}
		if err := remote.WriteIndex(mustRef(t, a.Addr+"/team/multi:v1"), idx); err != nil {
			t.Fatalf("push to node A: %v", err)
		}

		want, _ := idx.Digest()
		if got, err := crane.Digest(b.Addr+"/team/multi:v1", crane.Insecure); err != nil || got != want.String() {
			t.Fatalf("node B: index digest %s (%v), want %s", got, err, want)
		}
		pulled, err := remote.Index(mustRef(t, b.Addr+"/team/multi:v1"))
		if err == nil {
			err = verifyIndex(pulled)
		}
		if err != nil {
			t.Fatalf("pull index from node B: %v", err)
		}
		for arch, img := range images {
			got, err := crane.Pull(b.Addr+"/team/multi:v1", crane.Insecure,
				crane.WithPlatform(&v1.Platform{OS: "linux", Architecture: arch}))
			if err == nil {
				err = verifyImage(got)
			}
			if err != nil {
				t.Fatalf("crane pull linux/%s from node B: %v", arch, err)
			}
			gd, _ := got.Digest()
			wd, _ := img.Digest()
			if gd != wd {
				t.Errorf("linux/%s from node B: %s, want %s", arch, gd, wd)
			}
		}
		if tags, err := crane.ListTags(b.Addr+"/team/multi", crane.Insecure); err != nil || join(tags) != "v1" {
			t.Errorf("node B tags %v (%v), want [v1]", tags, err)
		}
	})

	t.Run("chunked upload across nodes", func(t *testing.T) {
		const repo = "team/chunked"
		// The first chunk is over S3's 5 MiB minimum part, so node A
		// leaves a multipart upload in progress that node B continues.
		data := randomBytes(t, 6<<20+300<<10+100<<10)
		c1, c2, c3 := data[:6<<20], data[6<<20:6<<20+300<<10], data[6<<20+300<<10:]
		d := sha256Digest(data)
		chunk := func(from, n int) map[string]string {
			return map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", from, from+n-1),
			}
		}
		wantRange := func(what string, resp *http.Response, body []byte, status, size int) {
			t.Helper()
			if resp.StatusCode != status || resp.Header.Get("Range") != fmt.Sprintf("0-%d", size-1) {
				t.Fatalf("%s = %s, Range %q; want %d, Range 0-%d\n%s", what, resp.Status, resp.Header.Get("Range"), status, size-1, body)
			}
		}

		resp, _ := do(t, http.MethodPost, a.Addr, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST on node A: %s", resp.Status)
		}
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		loc := u.RequestURI() // the same upload on either node
		id := resp.Header.Get("Docker-Upload-UUID")

		resp, body := do(t, http.MethodPatch, a.Addr, loc, c1, chunk(0, len(c1)))
		wantRange("PATCH 1 on node A", resp, body, http.StatusAccepted, len(c1))
		drv := s3Driver(t, g, bucket)
		if ups := multipartUploads(t, drv, uploadKeyPrefix(repo, id)); len(ups) != 1 {
			t.Errorf("after a 6 MiB chunk: multipart uploads %v, want one", ups)
		}

		resp, body = do(t, http.MethodGet, b.Addr, loc, nil, nil)
		wantRange("upload status on node B", resp, body, http.StatusNoContent, len(c1))
		resp, body = do(t, http.MethodPatch, b.Addr, loc, c2, chunk(len(c1), len(c2)))
		wantRange("PATCH 2 on node B", resp, body, http.StatusAccepted, len(c1)+len(c2))
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		resp, body = do(t, http.MethodPut, b.Addr, loc+sep+"digest="+d, c3, chunk(len(c1)+len(c2), len(c3)))
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d {
			t.Fatalf("PUT on node B = %s, digest %q; want 201, %s\n%s", resp.Status, resp.Header.Get("Docker-Content-Digest"), d, body)
		}

		resp, got := getBlob(t, a.Addr, repo, d, "")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET from node A = %s, %d bytes (%s), want the %d bytes pushed", resp.Status, len(got), sha256Digest(got), len(data))
		}
		resp, _ = do(t, http.MethodHead, b.Addr, "/v2/"+repo+"/blobs/"+d, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
			t.Errorf("HEAD on node B = %s, %d bytes", resp.Status, resp.ContentLength)
		}
		// Nothing of the upload is left behind in the bucket.
		if ups := multipartUploads(t, drv, uploadKeyPrefix(repo, id)); len(ups) != 0 {
			t.Errorf("after the PUT: multipart uploads %v left", ups)
		}
		if keys := objectKeys(t, drv, uploadKeyPrefix(repo, id)); len(keys) != 0 {
			t.Errorf("after the PUT: upload keys %v left", keys)
		}
	})
}

// TestS3UploadPurge abandons an upload with a multipart upload in
// progress on node A, then starts node B with upload purging (age 1s,
// every 1s): B's purger must abort the multipart upload and remove the
// upload's folder.
func TestS3UploadPurge(t *testing.T) {
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	a := newS3Node(t, g, bucket)
	startS3Node(t, a)

	const repo = "team/abandoned"
	resp, _ := do(t, http.MethodPost, a.Addr, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	id := resp.Header.Get("Docker-Upload-UUID")
	loc := "/v2/" + repo + "/blobs/uploads/" + id
	chunk := randomBytes(t, 5<<20+512<<10)
	resp, body := do(t, http.MethodPatch, a.Addr, loc, chunk, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %s %s", resp.Status, body)
	}
	drv := s3Driver(t, g, bucket)
	prefix := uploadKeyPrefix(repo, id)
	if ups := multipartUploads(t, drv, prefix); len(ups) != 1 {
		t.Fatalf("after a %d-byte chunk: multipart uploads %v, want one", len(chunk), ups)
	}

	// startedat has one-second resolution: with age 1s, the upload is
	// stale from 2 s after it started at the latest.
	b := newS3Node(t, g, bucket)
	b.Purge, b.Level = true, "info"
	pb := startS3Node(t, b)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ups, keys := multipartUploads(t, drv, prefix), objectKeys(t, drv, prefix)
		if len(ups) == 0 && len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s of purging every second: multipart uploads %v, upload keys %v remain\nnode B:\n%s", ups, keys, pb.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := pb.Output(); !strings.Contains(out, "purging stale upload") || !strings.Contains(out, id) {
		t.Errorf("node B did not log the purge of %s:\n%s", id, out)
	}
	resp, _ = do(t, http.MethodGet, a.Addr, loc, nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("upload status on node A after the purge = %s, want 404", resp.Status)
	}
}

// TestS3BadSetup: a wrong S3 setting stops regctl serve at startup, in
// seconds, with one line naming the setting to fix and a non-zero exit.
func TestS3BadSetup(t *testing.T) {
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	for _, tc := range []struct {
		name    string
		change  func(*s3Node)
		setting string
	}{
		{"wrong secret key", func(n *s3Node) { n.SecretKey = "not-the-secret" }, "storage.s3.accesskey/secretkey"},
		{"unknown access key", func(n *s3Node) { n.AccessKey = "nobody-here" }, "storage.s3.accesskey/secretkey"},
		{"missing bucket", func(n *s3Node) { n.Bucket = "no-such-bucket" }, "storage.s3.bucket"},
		// A port that was free a moment ago: nothing listens there.
		{"closed port", func(n *s3Node) { n.Endpoint = "http://" + testtools.FreeAddr(t) }, "storage.s3.regionendpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newS3Node(t, g, bucket)
			tc.change(&n)
			cfg := n.write(t)
			start := time.Now()
			out, code := runRegctl(t, filepath.Dir(cfg), cleanEnv(), "serve", cfg)
			took := time.Since(start)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			t.Logf("exit %d after %v: %s", code, took.Round(time.Millisecond), out)
			if code == 0 {
				t.Errorf("exit 0, want a failure")
			}
			if took > 10*time.Second {
				t.Errorf("took %v to fail, want a few seconds", took)
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.setting) {
				t.Errorf("want one line naming %s, got:\n%s", tc.setting, out)
			}
		})
	}
}
