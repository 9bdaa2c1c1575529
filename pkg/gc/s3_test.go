package gc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"regctl/internal/testtools"
	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// The S3 tests run on versitygw: one gateway per test, a bucket per
// registry, kept small.

func newS3(t testing.TB, g *testtools.VersityGW, bucket string) *storage.S3 {
	t.Helper()
	d, err := storage.NewS3(context.Background(), map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": bucket, "pathstyle": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	clients.Store(d, g.Client())
	return d
}

// clients holds an SDK client of the gateway of each driver newS3
// opened, to look at the bucket behind the driver's back.
var clients sync.Map // *storage.S3 -> *s3.Client

func clientOf(d *storage.S3) *s3.Client {
	c, _ := clients.Load(d)
	return c.(*s3.Client)
}

// s3Batch is the DeleteMany the S3 driver is asked for, done here with
// the driver's client (and an empty rootdirectory): one DeleteObjects
// per 1000 keys.
type s3Batch struct {
	*storage.S3
	calls int
}

func (b *s3Batch) DeleteMany(ctx context.Context, paths []string) error {
	b.calls++
	objs := make([]types.ObjectIdentifier, len(paths))
	for i, p := range paths {
		objs[i] = types.ObjectIdentifier{Key: aws.String(strings.TrimPrefix(p, "/"))}
	}
	out, err := clientOf(b.S3).DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(b.Bucket()),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(e.Key), aws.ToString(e.Code)))
		}
	}
	return errors.Join(errs...)
}

func TestS3Scenarios(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, newS3(t, g, g.Bucket(t)), sc)
		})
		// With the listing and batch deletes the S3 driver is asked for.
		t.Run(sc.name+"/lister", func(t *testing.T) {
			t.Parallel()
			runScenario(t, &s3Lister{S3: newS3(t, g, g.Bucket(t))}, sc)
		})
	}
}

// TestS3SameAsFilesystem collects the same random registry on S3 (with
// and without batched deletes) and on the filesystem: the trees left
// are the same. The names avoid siblings like "a" and "a-b", which the
// two walks order differently.
func TestS3SameAsFilesystem(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	names := []string{"app", "g/app", "g/lib", "lib", "z0"}
	for seed := range 2 {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/batched=%v", seed, batched), func(t *testing.T) {
				t.Parallel()
				opts := genOptions{Repos: 5, Ops: 40, Referrers: true, Deletes: true, Docker: true, Names: names}
				fsd, _ := newFS(t)
				f := newFixture(t, fsd, uint64(3000+seed))
				f.regctlLinks = true
				f.generate(opts)
				s3d := newS3(t, g, g.Bucket(t))
				f = newFixture(t, s3d, uint64(3000+seed))
				f.regctlLinks = true
				f.generate(opts)
				var drv storage.Driver = s3d
				batch := &s3Lister{S3: s3d}
				if batched {
					drv = batch
				}
				before := snapshot(t, drv)
				if d := diffTrees(snapshot(t, fsd), before); d != "" {
					t.Fatalf("the fixture differs between drivers:\n%s", d)
				}
				fsRep, _ := run(t, fsd, gc.Options{RemoveUntagged: true})
				rep, _ := run(t, drv, gc.Options{RemoveUntagged: true})
				if d := diffTrees(snapshot(t, fsd), snapshot(t, drv)); d != "" {
					t.Errorf("S3 (got) differs from the filesystem (want):\n%s", d)
				}
				if fmt.Sprint(rep.BlobsDeleted, rep.ManifestsDeleted, rep.BytesFreed) != fmt.Sprint(fsRep.BlobsDeleted, fsRep.ManifestsDeleted, fsRep.BytesFreed) {
					t.Errorf("S3 report %+v, filesystem report %+v", rep, fsRep)
				}
				checkAfter(t, newModel(before), snapshot(t, drv), true)
				if batched && batch.batch.calls == 0 {
					t.Error("DeleteMany never called")
				}
			})
		}
	}
}

// TestS3SameAsDistribution runs Distribution's own S3 driver on one
// bucket and Run on another holding the same registry, repositories
// named so that S3's key order differs from the filesystem's.
func TestS3SameAsDistribution(t *testing.T) {
	t.Parallel()
	bin := testtools.Tool(t, testtools.DistributionTool)
	g := testtools.NewVersityGW(t)
	for _, m := range []bool{false, true} {
		t.Run(fmt.Sprint("m=", m), func(t *testing.T) {
			t.Parallel()
			opts := genOptions{Repos: 10, Ops: 60, Deletes: true, Docker: true}
			ours, theirs := g.Bucket(t), g.Bucket(t)
			ourDrv, theirDrv := newS3(t, g, ours), newS3(t, g, theirs)
			newFixture(t, ourDrv, 4000).generate(opts)
			newFixture(t, theirDrv, 4000).generate(opts)

			cfg := filepath.Join(t.TempDir(), "config.yml")
			yml := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  s3:
    accesskey: %q
    secretkey: %q
    region: %q
    regionendpoint: %q
    bucket: %q
    forcepathstyle: true
    secure: false
  delete:
    enabled: true
`, g.AccessKey, g.SecretKey, g.Region, g.Endpoint, theirs)
			if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"garbage-collect", "-q"}
			if m {
				args = append(args, "-m")
			}
			out, err := testtoolsCommand(bin, append(args, cfg)...)
			if err != nil {
				t.Fatalf("registry %v: %v\n%s", args, err, out)
			}
			before := snapshot(t, ourDrv)
			rep, _ := run(t, ourDrv, gc.Options{RemoveUntagged: m})
			kept, _ := checkAgainstDistribution(t, before, snapshot(t, theirDrv), snapshot(t, ourDrv))
			if rep.LayerLinksKept != len(kept) {
				t.Errorf("-m=%v: LayerLinksKept = %d, but %d layer links stayed that Distribution deleted", m, rep.LayerLinksKept, len(kept))
			}
			t.Logf("-m=%v: %d layer links and %d blobs deleted", m, rep.LayerLinksDeleted, rep.BlobsDeleted)
		})
	}
}

// s3Lister is the ListFiles the S3 driver is asked for, done here with
// its client (and an empty rootdirectory): one flat listing, ETags as
// MD5s.
type s3Lister struct {
	*storage.S3
	batch s3Batch
}

func (l *s3Lister) DeleteMany(ctx context.Context, paths []string) error {
	l.batch.S3 = l.S3
	return l.batch.DeleteMany(ctx, paths)
}

func (l *s3Lister) ListFiles(ctx context.Context, p string, fn func(storage.FileInfo, string) error) error {
	prefix := strings.TrimPrefix(p, "/") + "/"
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket()), Prefix: aws.String(prefix)}
	for {
		out, err := clientOf(l.S3).ListObjectsV2(ctx, in)
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if strings.HasSuffix(k, "/") || strings.HasSuffix(k, ".regctl-upload") || strings.HasSuffix(k, ".regctl-pending") {
				continue
			}
			sum := strings.Trim(aws.ToString(o.ETag), `"`)
			if strings.Contains(sum, "-") {
				sum = "" // a multipart upload's ETag is no MD5
			}
			if err := fn(storage.FileInfo{Path: "/" + k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}, sum); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
