package testtools

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartVersityGW(t *testing.T) {
	t.Parallel()
	endpoint, ak, sk := StartVersityGW(t)
	c := s3Client(endpoint, ak, sk)
	out, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(VersityGWBucket)})
	if err != nil {
		t.Fatalf("listing the bucket: %v", err)
	}
	if len(out.Contents) != 0 {
		t.Errorf("new bucket holds %d objects", len(out.Contents))
	}
	if _, err := s3Client(endpoint, ak, "wrong").ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(VersityGWBucket)}); err == nil {
		t.Error("a wrong secret key was accepted")
	}
}

func TestVersityGWBuckets(t *testing.T) {
	t.Parallel()
	g := NewVersityGW(t)
	a, b := g.Bucket(t), g.Bucket(t)
	if a == b {
		t.Fatalf("Bucket returned %q twice", a)
	}
	c := s3Client(g.Endpoint, g.AccessKey, g.SecretKey)
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(a), Key: aws.String("k/o")}); err != nil {
		t.Fatal(err)
	}
	// The posix backend: an object is a file below the bucket's folder.
	if _, err := os.Stat(filepath.Join(g.Dir, a, "k", "o")); err != nil {
		t.Errorf("object not stored as a file: %v", err)
	}
	out, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(b)})
	if err != nil || len(out.Contents) != 0 {
		t.Errorf("second bucket: %v objects, %v", len(out.Contents), err)
	}
}
