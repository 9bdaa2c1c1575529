package migrate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/testtools"
	"regctl/pkg/registryd"
	"regctl/pkg/storage"
)

// fixture is a filesystem registry (served in-process, to push into it
// as clients do) and an empty bucket on a real S3 server.
type fixture struct {
	t      *testing.T
	root   string
	srv    *httptest.Server
	host   string
	gw     *testtools.VersityGW
	bucket string
	params map[string]any
	target *storage.S3
	logs   *testtools.SyncBuffer
}

func newFixture(t *testing.T, extra map[string]any) *fixture {
	t.Helper()
	root := t.TempDir()
	fsd, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registryd.New(registryd.Options{Driver: fsd, DeleteEnabled: true, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	g := testtools.NewVersityGW(t)
	f := &fixture{t: t, root: root, srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), gw: g, bucket: g.Bucket(t), logs: &testtools.SyncBuffer{}}
	f.params = map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": f.bucket, "pathstyle": true,
		"chunksize": 5 << 20, "rootdirectory": "/registry",
	}
	for k, v := range extra {
		f.params[k] = v
	}
	f.target = f.openTarget(f.params)
	return f
}

func (f *fixture) openTarget(params map[string]any) *storage.S3 {
	f.t.Helper()
	d, err := storage.NewS3WithOptions(f.t.Context(), params, storage.S3Options{Setting: "migration.s3"})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) opts() Options {
	return Options{SourceRoot: f.root, Target: f.target, Log: slog.New(slog.NewTextHandler(f.logs, nil))}
}

func (f *fixture) sync(opts Options) *Result {
	f.t.Helper()
	r, err := Sync(f.t.Context(), opts)
	if err != nil {
		f.t.Fatalf("sync: %v\nlogs:\n%s", err, f.logs)
	}
	return r
}

// push writes a random image (layers of size bytes each) to repo:tag.
func (f *fixture) push(repo, tag string, size int64, layers int) v1.Image {
	f.t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(repo, tag, img)
	return img
}

func (f *fixture) write(repo, tag string, img v1.Image) {
	f.t.Helper()
	ref, err := name.ParseReference(f.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		f.t.Fatalf("push %s: %v", ref, err)
	}
}

// serveBucket serves the target bucket with regctl's registry, as
// `regctl serve` would after the switch.
func serveBucket(t *testing.T, d *storage.S3) string {
	t.Helper()
	srv := httptest.NewServer(registryd.New(registryd.Options{Driver: d, RedirectDisabled: true, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pullAll pulls repo:tag from host and checks every layer against its
// digest and want's manifest.
func pullAll(t *testing.T, host, repo, tag string, want v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	gd, _ := img.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Fatalf("pull %s: manifest %s, want %s", ref, gd, wd)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest as it reads
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("pull %s: layer: %v", ref, err)
		}
		if err := rc.Close(); err != nil {
			t.Fatalf("pull %s: layer: %v", ref, err)
		}
	}
	if _, err := img.RawConfigFile(); err != nil {
		t.Fatalf("pull %s: config: %v", ref, err)
	}
}

// bucketKeys lists every key of the bucket with its size and ETag.
func (f *fixture) bucketKeys() map[string]string {
	f.t.Helper()
	c := f.gw.Client()
	out := map[string]string{}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket)}
	for {
		page, err := c.ListObjectsV2(f.t.Context(), in)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = fmt.Sprintf("%d %s", aws.ToInt64(o.Size), aws.ToString(o.ETag))
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// sourceFiles lists the source's files that migrate copies, relative to
// the storage root.
func (f *fixture) sourceFiles() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	filepath.Walk(f.root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(f.root, p)
		rel = filepath.ToSlash(rel)
		if excluded(relOf("/" + rel)) {
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = string(b)
		return nil
	})
	return out
}

// put writes an object straight into the bucket at key.
func (f *fixture) put(key string, body []byte) {
	f.t.Helper()
	_, err := f.gw.Client().PutObject(f.t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	})
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
}

// get reads an object of the bucket.
func (f *fixture) get(key string) io.ReadCloser {
	f.t.Helper()
	out, err := f.gw.Client().GetObject(f.t.Context(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		f.t.Fatalf("get %s: %v", key, err)
	}
	return out.Body
}

func (f *fixture) del(key string) {
	f.t.Helper()
	if _, err := f.gw.Client().DeleteObject(f.t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)}); err != nil {
		f.t.Fatal(err)
	}
}

// key is the bucket key of a path below the storage root.
func (f *fixture) key(rel string) string { return "registry/" + rel }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var _ = context.Background

func readAllT(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
