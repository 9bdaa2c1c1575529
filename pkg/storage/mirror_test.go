package storage_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// PutVerified stores content whose MD5 is the one given, and refuses
// other content, leaving nothing at the path: on S3 the server checks
// the Content-MD5, on the filesystem the driver does.
func TestPutVerified(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	fsd, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []storage.Driver{fsd, newS3(t, g, g.Bucket(t), nil)} {
		t.Run(d.Name(), func(t *testing.T) {
			ctx := t.Context()
			vp, ok := storage.As[storage.VerifiedPutter](d)
			if !ok {
				t.Fatal("no VerifiedPutter")
			}
			content := []byte(strings.Repeat("verified ", 1000))
			sum := md5.Sum(content)
			if err := vp.PutVerified(ctx, "/a/ok", bytes.NewReader(content), int64(len(content)), sum[:]); err != nil {
				t.Fatal(err)
			}
			if got, err := d.GetContent(ctx, "/a/ok"); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("read back %d bytes, %v", len(got), err)
			}
			other := md5.Sum([]byte("something else"))
			if err := vp.PutVerified(ctx, "/a/bad", bytes.NewReader(content), int64(len(content)), other[:]); err == nil {
				t.Error("content with another MD5 was stored")
			}
			if _, err := d.Stat(ctx, "/a/bad"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after a refused put: %v, want not found", err)
			}
			if names, _ := d.List(ctx, "/a"); !slices.Equal(names, []string{"/a/ok"}) {
				t.Errorf("the folder holds %v", names)
			}
		})
	}
}

// ListObjects shows what ListFiles hides, strays, and DeleteMany takes
// their paths; a level listing gives the folder's own marker and its
// subfolders; MD5s come with the listing.
func TestS3ListObjectsAndStrays(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	d := newS3(t, g, bucket, map[string]any{"rootdirectory": "reg"})
	ctx := t.Context()
	for _, p := range []string{"/top/f", "/top/sub/g"} {
		if err := d.PutContent(ctx, p, []byte("content of "+p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"reg/top/", "reg/top/sub/", "reg/top/w.regctl-upload"} {
		if _, err := storage.S3Client(d).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("")}); err != nil {
			t.Fatal(err)
		}
	}
	ol, ok := storage.As[storage.ObjectLister](d)
	if !ok {
		t.Fatal("no ObjectLister")
	}
	list := func(level bool) []string {
		var got []string
		err := ol.ListObjects(ctx, "/top", level, func(o storage.Object) error {
			s := o.Path
			switch {
			case o.IsDir:
				s += " dir"
			case o.Stray:
				s += " stray"
			default:
				sum := md5.Sum([]byte("content of " + o.Path))
				if o.MD5 != hex.EncodeToString(sum[:]) {
					t.Errorf("%s: MD5 %q", o.Path, o.MD5)
				}
			}
			got = append(got, s)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	if got := list(false); !slices.Equal(got, []string{"/top/ stray", "/top/f", "/top/sub/ stray", "/top/sub/g"}) {
		t.Errorf("flat listing: %q", got)
	}
	if got := list(true); !slices.Equal(got, []string{"/top/ stray", "/top/f", "/top/sub dir"}) {
		t.Errorf("level listing: %q", got)
	}
	if err := d.DeleteMany(ctx, []string{"/top/", "/top/sub/"}); err != nil {
		t.Fatal(err)
	}
	if got := list(false); !slices.Equal(got, []string{"/top/f", "/top/sub/g"}) {
		t.Errorf("after deleting the strays: %q", got)
	}
}
