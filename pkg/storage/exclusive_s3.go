package storage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var _ ExclusiveCreator = (*S3)(nil)

// s3ConflictRetries bounds the retries of a conditional put that S3
// answered with 409 ConditionalRequestConflict (another conditional write
// to the key was in progress): the next try gets the verdict, 412 when
// that other write won.
const s3ConflictRetries = 5

// CreateExclusive is a PutObject with If-None-Match: *, which S3 (since
// August 2024) and versitygw (v1.8.0 checked by the tests) evaluate
// atomically against the key: exactly one of several concurrent creates
// succeeds, the others get 412 Precondition Failed. S3 replaces objects
// whole, so readers never see a part.
//
// One caveat callers on S3 must allow for: when a create succeeded but
// its answer was lost, the SDK's retry finds the object and reports
// ErrExists for our own write. Content that identifies its writer (a
// random token) lets the caller read the object back and tell.
func (d *S3) CreateExclusive(ctx context.Context, p string, content []byte) error {
	if err := d.checkNotRoot("create", p); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	key := d.key(p)
	in := &s3.PutObjectInput{
		Bucket:        &d.bucket,
		Key:           &key,
		ContentLength: aws.Int64(int64(len(content))),
		ContentType:   aws.String("application/octet-stream"),
		IfNoneMatch:   aws.String("*"),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	in.StorageClass, in.ACL = d.storageClass, d.acl
	for attempt := 0; ; attempt++ {
		err := retryFolderRace(ctx, func() error {
			in.Body = bytes.NewReader(content)
			_, err := d.client.PutObject(ctx, in)
			return err
		})
		switch {
		case err == nil:
			return nil
		case status(err) == http.StatusPreconditionFailed || errorCode(err) == "PreconditionFailed":
			return Exists(p)
		case (status(err) == http.StatusConflict || errorCode(err) == "ConditionalRequestConflict") && attempt < s3ConflictRetries:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
			}
		default:
			return fmt.Errorf("s3: create %s: %w", p, err)
		}
	}
}
