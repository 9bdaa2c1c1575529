package testtools

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersityGWTool is the binary name of the Versity S3 gateway
// (github.com/versity/versitygw/cmd/versitygw@v1.8.0).
const VersityGWTool = "versitygw"

// VersityGWBucket is the empty bucket StartVersityGW creates.
const VersityGWBucket = "regctl-test"

// VersityGWRegion is the region versitygw answers for (its default).
const VersityGWRegion = "us-east-1"

// VersityGW is a running Versity S3 gateway on a posix folder: every
// folder of Dir is a bucket, every file below it an object.
type VersityGW struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string
	Dir       string
	Process   *Process

	buckets atomic.Int64
}

// StartVersityGW starts a gateway for the test, with the bucket
// VersityGWBucket, and returns how to reach it. It is stopped when the
// test ends. It skips or fails the test like Tool when versitygw is
// missing.
func StartVersityGW(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	g := NewVersityGW(t)
	g.CreateBucket(t, VersityGWBucket)
	return g.Endpoint, g.AccessKey, g.SecretKey
}

// NewVersityGW starts `versitygw --port 127.0.0.1:PORT posix DIR` on a
// free port and a fresh temporary folder, with root credentials made up
// for the test (ROOT_ACCESS_KEY, ROOT_SECRET_KEY), and waits until it
// accepts connections. It has no bucket yet: see Bucket.
func NewVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	bin := Tool(t, VersityGWTool)
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("testtools: %v", err)
	}
	g := &VersityGW{
		Endpoint:  "",
		AccessKey: "regctl-test-root",
		SecretKey: hex.EncodeToString(secret),
		Region:    VersityGWRegion,
		Dir:       t.TempDir(),
	}
	p, addr := StartOnFreePort(t, func(addr string) *exec.Cmd {
		// --quiet: the request log would grow in memory for the whole test.
		cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", g.Dir)
		// Variables of the caller's own gateway must not leak in.
		env := withoutPrefix(withoutPrefix(os.Environ(), "VGW_"), "ROOT_")
		cmd.Env = append(env, "ROOT_ACCESS_KEY="+g.AccessKey, "ROOT_SECRET_KEY="+g.SecretKey)
		return cmd
	})
	g.Process = p
	g.Endpoint = "http://" + addr
	return g
}

// CreateBucket makes an empty bucket: in the posix backend a bucket is a
// folder of Dir.
func (g *VersityGW) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(g.Dir, name), 0o755); err != nil {
		t.Fatalf("testtools: creating bucket %s: %v", name, err)
	}
}

// Bucket creates a fresh bucket with a name no other call returned.
func (g *VersityGW) Bucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("bucket-%04d", g.buckets.Add(1))
	g.CreateBucket(t, name)
	return name
}

// Client is an SDK client of the gateway, for tests that look at a
// bucket behind a storage driver's back (every key, folder markers).
func (g *VersityGW) Client() *s3.Client { return s3Client(g.Endpoint, g.AccessKey, g.SecretKey) }

func s3Client(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       VersityGWRegion,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}
