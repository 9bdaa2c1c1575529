package storage

import (
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// SetS3ListPageSize makes d list n keys a page, so tests page through
// small trees.
func SetS3ListPageSize(d *S3, n int32) { d.listPageSize = n }

// SetS3KMS makes d encrypt with SSE-KMS key keyID, as encrypt and keyid
// settings do (versitygw does not implement KMS).
func SetS3KMS(d *S3, keyID string) { d.sse, d.kmsKeyID = types.ServerSideEncryptionAwsKms, keyID }

// S3Client is d's SDK client, for tests that look at the bucket behind
// the driver's back.
func S3Client(d *S3) *s3.Client { return d.client }
