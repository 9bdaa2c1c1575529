package storage

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"regctl/internal/testtools"
)

// cannedDoer answers every request with the same response.
type cannedDoer struct {
	status int
	body   string
	calls  int
}

func (c *cannedDoer) Do(req *http.Request) (*http.Response, error) {
	c.calls++
	return &http.Response{
		StatusCode: c.status, Header: http.Header{"Content-Type": {"application/xml"}},
		Body: io.NopCloser(strings.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: req,
	}, nil
}

// cannedClient is an S3 client whose server always sends body.
func cannedClient(status int, body string) (*s3.Client, *cannedDoer) {
	doer := &cannedDoer{status: status, body: body}
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://s3.test"), UsePathStyle: true,
		HTTPClient: doer, Credentials: aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
	}), doer
}

// listBoth lists through the SDK's decoder and through listFast. fast
// is nil when listFast left the page to the SDK.
func listBoth(t *testing.T, status int, body string) (sdk *listPage, sdkErr error, fast *listPage, fastErr error) {
	t.Helper()
	client, _ := cannedClient(status, body)
	in := &s3.ListObjectsV2Input{Bucket: aws.String("b")}
	out, sdkErr := client.ListObjectsV2(t.Context(), in)
	if sdkErr == nil {
		sdk = sdkListPage(out)
	}
	out, fastErr = client.ListObjectsV2(t.Context(), in, listFast(&fast))
	if fastErr == nil && fast == nil {
		// Left to the SDK: then its output must be the page.
		if p := sdkListPage(out); !samePage(p, sdk) {
			t.Errorf("page left to the SDK decodes as %+v, want %+v", p, sdk)
		}
	}
	return sdk, sdkErr, fast, fastErr
}

// samePage compares pages, an empty list of objects equal to none.
func samePage(a, b *listPage) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.truncated == b.truncated && a.next == b.next && slices.Equal(a.objects, b.objects)
}

const listHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>`

func TestParseListPage(t *testing.T) {
	t.Parallel()
	modTime := time.Date(2026, 11, 25, 19, 55, 45, 0, time.UTC)
	for _, tc := range []struct {
		name string
		body string
		want *listPage // nil: left to the SDK
	}{{
		name: "versitygw",
		body: listHead + `<NextContinuationToken>a&amp;b</NextContinuationToken><IsTruncated>true</IsTruncated>` +
			`<Contents><LastModified>2026-11-25T19:55:45Z</LastModified><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ETag>&#34;2CEFB0178E6E7B5D803FFC7696E402C1&#34;</ETag><Key>docker/a&amp;b&lt;c&gt;d&apos;e&quot;f &#233;t&#xE9; ünï 日本 😀</Key><Size>311</Size><StorageClass>STANDARD</StorageClass></Contents>` +
			`<Contents><Key>k2</Key><Size>0</Size><ETag>"abc-2"</ETag><Owner><ID>x</ID><DisplayName>y</DisplayName></Owner></Contents></ListBucketResult>`,
		want: &listPage{truncated: true, next: "a&b", objects: []listedObject{
			{key: "docker/a&b<c>d'e\"f été ünï 日本 😀", etag: `"2CEFB0178E6E7B5D803FFC7696E402C1"`, size: 311, modTime: modTime},
			{key: "k2", etag: `"abc-2"`},
		}},
	}, {
		name: "pretty-printed, names in another case, attributes",
		body: "<?xml version=\"1.0\"?>\n<ListBucketResult a='x>y' b=\"1\">\n  <isTruncated>false</isTruncated>\n  <contents>\n    <key >k\tv\n</key>\n    <SIZE>7</SIZE>\n    <ETag/>\n  </contents>\n</ListBucketResult>\n",
		want: &listPage{objects: []listedObject{{key: "k\tv\n", size: 7}}},
	}, {
		name: "empty bucket",
		body: listHead + `<IsTruncated>false</IsTruncated></ListBucketResult>`,
		want: &listPage{},
	}, {
		name: "empty body",
		body: "",
		want: &listPage{},
	}, {
		name: "Key deeper down is not a key",
		body: listHead + `<Contents><Key>k</Key><Owner><Key>no</Key></Owner></Contents><Key>no</Key></ListBucketResult>`,
		want: &listPage{objects: []listedObject{{key: "k"}}},
	},
		{name: "comment", body: listHead + `<!-- hi --></ListBucketResult>`},
		{name: "CDATA", body: listHead + `<Contents><Key><![CDATA[a]]></Key></Contents></ListBucketResult>`},
		{name: "carriage return", body: listHead + "<Contents><Key>a\r\nb</Key></Contents></ListBucketResult>"},
		{name: "prefixed name", body: listHead + `<s3:Contents><s3:Key>a</s3:Key></s3:Contents></ListBucketResult>`},
		{name: "unknown entity", body: listHead + `<Contents><Key>a&nbsp;b</Key></Contents></ListBucketResult>`},
		{name: "bad character reference", body: listHead + `<Contents><Key>a&#0;b</Key></Contents></ListBucketResult>`},
		{name: "control character", body: listHead + "<Contents><Key>a\x01b</Key></Contents></ListBucketResult>"},
		{name: "invalid UTF-8", body: listHead + "<Contents><Key>a\xffb</Key></Contents></ListBucketResult>"},
		{name: "mismatched end", body: listHead + `<Contents><Key>a</Size></Contents></ListBucketResult>`},
		{name: "cut short", body: listHead + `<Contents><Key>a</Key>`},
		{name: "bad size", body: listHead + `<Contents><Size>1.5</Size></Contents></ListBucketResult>`},
		{name: "bad time", body: listHead + `<Contents><LastModified>yesterday</LastModified></Contents></ListBucketResult>`},
		{name: "bad IsTruncated", body: listHead + `<IsTruncated>maybe</IsTruncated></ListBucketResult>`},
		{name: "value with children", body: listHead + `<Contents><Key><b>a</b></Key></Contents></ListBucketResult>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseListPage([]byte(tc.body))
			if tc.want == nil {
				if ok {
					t.Fatalf("parsed %+v, want it left to the SDK", got)
				}
			} else if !ok || !samePage(got, tc.want) {
				t.Fatalf("got %+v (%v), want %+v", got, ok, tc.want)
			}
			// Whatever the SDK makes of it, listFast makes the same.
			sdk, sdkErr, fast, fastErr := listBoth(t, http.StatusOK, tc.body)
			if (sdkErr == nil) != (fastErr == nil) {
				t.Fatalf("SDK error %v, with listFast %v", sdkErr, fastErr)
			}
			if fast != nil && !samePage(fast, sdk) {
				t.Fatalf("listFast %+v, SDK %+v", fast, sdk)
			}
			if (fast != nil) != (tc.want != nil) {
				t.Fatalf("listFast decoded it: %v, want %v", fast != nil, tc.want != nil)
			}
		})
	}
}

// FuzzParseListPage checks that whatever parseListPage accepts, the SDK
// decodes alike. parseListPage is stricter about XML, but does not
// check values it does not read (MaxKeys, StorageClass...): malformed
// ones there fail the SDK, not ListFiles.
func FuzzParseListPage(f *testing.F) {
	f.Add(listHead + `<IsTruncated>true</IsTruncated><NextContinuationToken>n</NextContinuationToken><Contents><Key>a&amp;&#34;b</Key><ETag>&#34;x&#34;</ETag><Size>1</Size><LastModified>2026-11-25T19:55:45.123Z</LastModified></Contents></ListBucketResult>`)
	f.Add("<a><Contents><Key/></Contents></a>")
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := parseListPage([]byte(body))
		if !ok {
			return
		}
		client, _ := cannedClient(http.StatusOK, body)
		out, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("b")})
		var syntaxErr *xml.SyntaxError
		if errors.As(err, &syntaxErr) {
			t.Fatalf("parsed %+v, the SDK fails: %v", fast, err)
		}
		if err != nil {
			return
		}
		if sdk := sdkListPage(out); !samePage(fast, sdk) {
			t.Fatalf("parsed %+v, the SDK %+v", fast, sdk)
		}
	})
}

// versitygw's pages, odd keys included, are read by parseListPage, and
// as the SDK reads them.
func TestListFastVersityGW(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	client := s3.New(s3.Options{
		Region: g.Region, BaseEndpoint: aws.String(g.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(g.AccessKey, g.SecretKey, ""),
	})
	keys := []string{"a&b", "x<y>z", `q"u'o`, "été/日本/😀", "sp ace+%41", "tab\tnl\nend", "cr\rend", "ctl\x01"}
	for i, k := range keys {
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader(strings.Repeat("x", i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	in := &s3.ListObjectsV2Input{Bucket: &bucket, MaxKeys: aws.Int32(3)}
	for pages := 0; ; pages++ {
		out, err := client.ListObjectsV2(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		var fast *listPage
		if _, err := client.ListObjectsV2(t.Context(), in, listFast(&fast)); err != nil {
			t.Fatal(err)
		}
		if sdk := sdkListPage(out); !samePage(fast, sdk) {
			t.Fatalf("page %d: listFast %+v, SDK %+v", pages, fast, sdk)
		}
		if !fast.truncated {
			if pages < 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		in.ContinuationToken = aws.String(fast.next)
	}
}

// Error answers, and 200s carrying an error, are the SDK's.
func TestListFastErrors(t *testing.T) {
	t.Parallel()
	noBucket := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`
	for _, tc := range []struct {
		status int
		code   string
	}{{http.StatusNotFound, "NoSuchBucket"}, {http.StatusOK, "NoSuchBucket"}, {http.StatusForbidden, "NoSuchBucket"}} {
		_, sdkErr, fast, fastErr := listBoth(t, tc.status, noBucket)
		if fast != nil || sdkErr == nil || fastErr == nil || errorCode(fastErr) != tc.code || fastErr.Error() != sdkErr.Error() {
			t.Errorf("%d: listFast %v (page %v), SDK %v", tc.status, fastErr, fast, sdkErr)
		}
	}
}

// A retried attempt does not keep the page of a failed one.
func TestListFastRetry(t *testing.T) {
	t.Parallel()
	var fast *listPage
	client, doer := cannedClient(http.StatusServiceUnavailable, `<Error><Code>SlowDown</Code></Error>`)
	_, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("b")}, listFast(&fast), func(o *s3.Options) { o.RetryMaxAttempts = 2 })
	if err == nil || fast != nil || doer.calls != 2 {
		t.Fatalf("err %v, page %v, %d calls", err, fast, doer.calls)
	}
}

// A server that says there is more but not where to go on would have
// ListFiles ask for the first page forever.
func TestListFilesNoContinuationToken(t *testing.T) {
	t.Parallel()
	client, doer := cannedClient(http.StatusOK, listHead+`<IsTruncated>true</IsTruncated><Contents><Key>docker/f</Key></Contents></ListBucketResult>`)
	d := &S3{client: client, bucket: "b"}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // without the check: for ever
	defer cancel()
	err := d.ListFiles(ctx, "/docker", func(FileInfo, string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "continuation token") || doer.calls != 1 {
		t.Fatalf("ListFiles: %v after %d requests", err, doer.calls)
	}
}

func BenchmarkParseListPage(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(listHead + `<NextContinuationToken>t</NextContinuationToken><IsTruncated>true</IsTruncated>`)
	for i := range 1000 {
		fmt.Fprintf(&body, `<Contents><LastModified>2026-11-25T19:55:45Z</LastModified><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><ETag>&#34;2cefb0178e6e7b5d803ffc7696e402c1&#34;</ETag><Key>docker/registry/v2/blobs/sha256/%02x/%064x/data</Key><Size>311</Size><StorageClass>STANDARD</StorageClass></Contents>`, i%256, i)
	}
	body.WriteString(`</ListBucketResult>`)
	b.Run("regctl", func(b *testing.B) {
		b.SetBytes(int64(body.Len()))
		for b.Loop() {
			if p, ok := parseListPage(body.Bytes()); !ok || len(p.objects) != 1000 {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		client, _ := cannedClient(http.StatusOK, body.String())
		b.SetBytes(int64(body.Len()))
		for b.Loop() {
			if out, err := client.ListObjectsV2(b.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("b")}); err != nil || len(out.Contents) != 1000 {
				b.Fatal(err)
			}
		}
	})
}
