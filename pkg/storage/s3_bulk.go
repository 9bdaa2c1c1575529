package storage

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What bulk tools (migrate-storage) need beyond the Driver interface:
// the key layout, the configured part size and the request templates
// that carry the settings' encryption, storage class and ACL, so objects
// they write are the objects the driver itself would write.

// Key is the object key of driver path p: rootdirectory + p.
func (d *S3) Key(p string) string { return d.key(p) }

// KeyPrefix is rootdirectory + "/", or "" for the bucket's root.
func (d *S3) KeyPrefix() string { return d.prefix }

// ChunkSize is the part size of multipart uploads (chunksize).
func (d *S3) ChunkSize() int64 { return d.chunkSize }

// ETagIsMD5 reports whether the ETag of an object written with one
// PutObject is the MD5 of its content: true except under SSE-KMS,
// where S3 makes it something else.
func (d *S3) ETagIsMD5() bool { return d.sse != types.ServerSideEncryptionAwsKms }

// Describe is "s3://bucket/rootdirectory at endpoint", for messages:
// it holds no credentials.
func (d *S3) Describe() string {
	where := d.endpoint
	if where == "" {
		where = "AWS region " + d.region
	}
	return "s3://" + d.bucket + "/" + d.prefix + " at " + where
}

// PutObjectInput is a PutObject of driver path p with the driver's
// encryption, storage class, ACL and content type; the caller adds the
// body and its length.
func (d *S3) PutObjectInput(p string) *s3.PutObjectInput {
	in := &s3.PutObjectInput{
		Bucket:       aws.String(d.bucket),
		Key:          aws.String(d.key(p)),
		ContentType:  aws.String("application/octet-stream"),
		StorageClass: d.storageClass,
		ACL:          d.acl,
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	return in
}

// CreateMultipartUploadInput is PutObjectInput for a multipart upload.
func (d *S3) CreateMultipartUploadInput(p string) *s3.CreateMultipartUploadInput {
	in := &s3.CreateMultipartUploadInput{
		Bucket:       aws.String(d.bucket),
		Key:          aws.String(d.key(p)),
		ContentType:  aws.String("application/octet-stream"),
		StorageClass: d.storageClass,
		ACL:          d.acl,
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	return in
}

// WithConnections returns a copy of the driver whose client keeps up to
// n idle connections to the server. The SDK's default keeps 10, so a
// tool sending many more requests at once would open and close a TCP
// (and TLS) connection for nearly every one of them. Everything else of
// the client is kept: retries, the request limit, the CA bundle,
// skipverify.
func (d *S3) WithConnections(n int) *S3 {
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
