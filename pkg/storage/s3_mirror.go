package storage

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What tools that copy a whole storage (migrate-storage) need beyond
// the Driver interface, as the capabilities ObjectLister,
// VerifiedPutter, MultipartWriter and ConnectionPool. Objects they write
// get the settings' encryption, storage class and ACL, as the driver's
// own writes do.

// Describe is "s3://bucket/rootdirectory at endpoint", for messages:
// it holds no credentials.
func (d *S3) Describe() string {
	where := d.endpoint
	if where == "" {
		where = "AWS region " + d.region
	}
	return "s3://" + d.bucket + "/" + d.prefix + " at " + where
}

// etagIsMD5 reports whether the ETag of an object written with one
// PutObject is the MD5 of its content: true except under SSE-KMS,
// where S3 makes it something else.
func (d *S3) etagIsMD5() bool { return d.sse != types.ServerSideEncryptionAwsKms }

// etagMD5 is the MD5 an ETag tells, "" when it tells none: a multipart
// ETag ("…-3"), or any ETag under SSE-KMS.
func (d *S3) etagMD5(etag string) string {
	etag = strings.ToLower(strings.Trim(etag, `"`))
	if !d.etagIsMD5() || !isMD5Hex(etag) {
		return ""
	}
	return etag
}

// isMD5Hex reports whether s has the form of an MD5 in hex.
func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkETag compares the ETag of a single-part write with the MD5 sent,
// where the ETag is one.
func (d *S3) checkETag(etag string, sum []byte) error {
	if got := d.etagMD5(etag); got != "" && got != hex.EncodeToString(sum) {
		return fmt.Errorf("the server stored ETag %s, not the MD5 of what was sent (%x)", got, sum)
	}
	return nil
}

// bodyOpts are the options of requests with a body and a Content-MD5:
// the body goes unsigned, since the server checks the MD5 and hashing
// it once more with SHA-256 for the signature would only cost CPU;
// unless checksum = when_supported asks for the SDK's own handling.
func (d *S3) bodyOpts() []func(*s3.Options) {
	if d.sdkChecksums {
		return nil
	}
	return []func(*s3.Options){unsignedBody}
}

var unsignedBody = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

func md5Header(sum []byte) *string { return aws.String(base64.StdEncoding.EncodeToString(sum)) }

// ListObjects lists the objects below folder p as they are in the
// bucket, strays included (see ObjectLister): all the way down with the
// fast page reader ListFiles uses, or one level with a delimiter.
func (d *S3) ListObjects(ctx context.Context, p string, level bool, fn func(Object) error) error {
	if err := d.checkPath(p); err != nil {
		return err
	}
	prefix := d.dirPrefix(p)
	in := &s3.ListObjectsV2Input{Bucket: aws.String(d.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(d.pageSize())}
	if level {
		in.Delimiter = aws.String("/")
	}
	for {
		var page *listPage
		var opts []func(*s3.Options)
		if !level {
			opts = append(opts, listFast(&page))
		}
		out, err := d.client.ListObjectsV2(ctx, in, opts...)
		if err != nil {
			return d.fail("list", p, err)
		}
		if page == nil {
			page = sdkListPage(out)
		}
		for _, cp := range out.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name == "" {
				continue
			}
			o := Object{Path: "/" + strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), d.prefix), "/"), IsDir: true, Stray: !validRel(name)}
			if err := fn(o); err != nil {
				return err
			}
		}
		for _, lo := range page.objects {
			k := lo.key
			if strings.HasSuffix(k, s3StateSuffix) || strings.HasSuffix(k, s3PendingSuffix) {
				continue
			}
			rel := strings.TrimPrefix(k, prefix)
			o := Object{
				Path: "/" + strings.TrimPrefix(k, d.prefix), Size: lo.size, ModTime: lo.modTime,
				MD5: d.etagMD5(lo.etag), Stray: !validRel(rel),
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		if !page.truncated {
			return nil
		}
		if page.next == "" {
			return fmt.Errorf("s3: list %s: the server says there is more but gives no continuation token", p)
		}
		in.ContinuationToken = aws.String(page.next)
	}
}

// PutVerified stores body with one PutObject carrying its Content-MD5,
// unsigned (see bodyOpts), and checks the ETag the server answers.
func (d *S3) PutVerified(ctx context.Context, p string, body io.ReadSeeker, size int64, sum []byte) error {
	if err := d.checkNotRoot("write", p); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(d.bucket),
		Key:           aws.String(d.key(p)),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentMD5:    md5Header(sum),
		ContentType:   aws.String("application/octet-stream"),
		StorageClass:  d.storageClass,
		ACL:           d.acl,
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	out, err := d.client.PutObject(ctx, in, d.bodyOpts()...)
	if err != nil {
		return fmt.Errorf("s3: write %s: %w", p, err)
	}
	if err := d.checkETag(aws.ToString(out.ETag), sum); err != nil {
		return fmt.Errorf("s3: write %s: %w", p, err)
	}
	return nil
}

// PartSize is chunksize, or more for a file that would need more than
// S3's 10,000 parts.
func (d *S3) PartSize(size int64) int64 {
	ps := d.chunkSize
	if n := (size + ps - 1) / ps; n > s3MaxParts {
		ps = (size + s3MaxParts - 1) / s3MaxParts
	}
	return ps
}

// ListUploads lists the multipart uploads in progress below folder p.
func (d *S3) ListUploads(ctx context.Context, p string) ([]Upload, error) {
	if err := d.checkPath(p); err != nil {
		return nil, err
	}
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(d.bucket), Prefix: aws.String(d.dirPrefix(p))}
	var found []Upload
	for {
		out, err := d.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3: listing the multipart uploads in s3://%s/%s: %w", d.bucket, aws.ToString(in.Prefix), err)
		}
		for _, u := range out.Uploads {
			found = append(found, Upload{
				Path: "/" + strings.TrimPrefix(aws.ToString(u.Key), d.prefix), ID: aws.ToString(u.UploadId), Started: aws.ToTime(u.Initiated),
			})
		}
		if !aws.ToBool(out.IsTruncated) {
			return found, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		if in.KeyMarker == nil && in.UploadIdMarker == nil {
			return found, nil
		}
	}
}

// ListParts lists the parts of an upload in progress.
func (d *S3) ListParts(ctx context.Context, u Upload) ([]Part, error) {
	in := &s3.ListPartsInput{Bucket: aws.String(d.bucket), Key: aws.String(d.key(u.Path)), UploadId: aws.String(u.ID)}
	var found []Part
	for {
		out, err := d.client.ListParts(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3: listing the parts of %s: %w", u.Path, err)
		}
		for _, pt := range out.Parts {
			etag := strings.Trim(aws.ToString(pt.ETag), `"`)
			found = append(found, Part{Number: aws.ToInt32(pt.PartNumber), Size: aws.ToInt64(pt.Size), MD5: d.etagMD5(etag), ETag: etag})
		}
		if !aws.ToBool(out.IsTruncated) || out.NextPartNumberMarker == nil {
			return found, nil
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
}

// CreateUpload starts a multipart upload with the data options.
func (d *S3) CreateUpload(ctx context.Context, p string) (Upload, error) {
	if err := d.checkNotRoot("write", p); err != nil {
		return Upload{}, err
	}
	id, err := d.createUpload(ctx, d.key(p))
	if err != nil {
		return Upload{}, fmt.Errorf("s3: write %s: %w", p, err)
	}
	return Upload{Path: p, ID: id}, nil
}

// UploadPart sends one part with its Content-MD5, unsigned (see
// bodyOpts), and checks the ETag the server answers.
func (d *S3) UploadPart(ctx context.Context, u Upload, n int32, body io.ReadSeeker, size int64, sum []byte) (Part, error) {
	out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(d.bucket), Key: aws.String(d.key(u.Path)), UploadId: aws.String(u.ID), PartNumber: aws.Int32(n),
		Body: body, ContentLength: aws.Int64(size), ContentMD5: md5Header(sum),
	}, d.bodyOpts()...)
	if err != nil {
		return Part{}, fmt.Errorf("s3: write %s: part %d: %w", u.Path, n, err)
	}
	etag := strings.Trim(aws.ToString(out.ETag), `"`)
	if err := d.checkETag(etag, sum); err != nil {
		return Part{}, fmt.Errorf("s3: write %s: part %d: %w", u.Path, n, err)
	}
	return Part{Number: n, Size: size, MD5: d.etagMD5(etag), ETag: etag}, nil
}

// CompleteUpload completes an upload from its parts.
func (d *S3) CompleteUpload(ctx context.Context, u Upload, parts []Part) error {
	sp := make([]s3Part, len(parts))
	for i, pt := range parts {
		sp[i] = s3Part{Number: pt.Number, ETag: `"` + strings.Trim(pt.ETag, `"`) + `"`, Size: pt.Size}
	}
	if err := d.completeUpload(ctx, d.key(u.Path), u.ID, sp); err != nil {
		return fmt.Errorf("s3: write %s: %w", u.Path, err)
	}
	return nil
}

// AbortUpload drops an upload; one already gone is fine.
func (d *S3) AbortUpload(ctx context.Context, u Upload) error {
	if err := d.abortUpload(ctx, d.key(u.Path), u.ID); err != nil {
		return fmt.Errorf("s3: abort the upload of %s: %w", u.Path, err)
	}
	return nil
}

// WithConnections returns a copy of the driver whose client keeps up to
// n idle connections to the server. The SDK's default keeps 10, so a
// tool sending many more requests at once would open and close a TCP
// (and TLS) connection for nearly every one of them. Everything else of
// the client is kept: retries, the request limit, the CA bundle,
// skipverify.
func (d *S3) WithConnections(n int) Driver {
	opts := d.client.Options()
	bc, ok := opts.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return d
	}
	opts.HTTPClient = bc.WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 2*n)
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, n)
	})
	c := *d
	c.client = s3.New(opts)
	c.presign = s3.NewPresignClient(c.client, s3.WithPresignExpires(s3RedirectExpiry))
	return &c
}

// Retryable reports whether a failed request may succeed when tried
// again: not when the backend refused the request as such (an HTTP 4xx
// other than a timeout or throttling), which would fail the same way.
func Retryable(err error) bool {
	switch st := status(err); {
	case st == 0:
		return true // no answer: the network, a timeout
	default:
		return st >= 500 || st == http.StatusRequestTimeout || st == http.StatusTooManyRequests
	}
}
