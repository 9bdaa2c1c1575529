package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListFiles calls fn for every file below folder p in one flat listing
// (1000 keys a request, no per-folder requests), with the content's MD5
// when the listing tells it (a single-part ETag without SSE-KMS), so a
// caller such as garbage collection needs no per-object HEAD or GET.
// It is ListObjects without the strays ("folder/" markers among them).
// A missing folder lists nothing.
func (d *S3) ListFiles(ctx context.Context, p string, fn func(fi FileInfo, md5 string) error) error {
	return d.ListObjects(ctx, p, false, func(o Object) error {
		if o.Stray {
			return nil
		}
		return fn(FileInfo{Path: o.Path, Size: o.Size, ModTime: o.ModTime}, o.MD5)
	})
}

// DeleteMany removes files (never folders) and strays (the one object
// each names; see Object) with DeleteObjects, 1000 keys a request.
// Paths already gone are not errors; the paths that could not be
// deleted are named in the error.
func (d *S3) DeleteMany(ctx context.Context, paths []string) error {
	var errs []error
	for start := 0; start < len(paths); start += 1000 {
		batch := paths[start:min(start+1000, len(paths))]
		objs := make([]types.ObjectIdentifier, 0, len(batch))
		for _, p := range batch {
			if err := d.checkPath(p); err != nil && !strayPath(p) {
				return err
			}
			objs = append(objs, types.ObjectIdentifier{Key: aws.String(d.key(p))})
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(d.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return d.fail("delete", batch[0], err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) != "NoSuchKey" {
				errs = append(errs, fmt.Errorf("s3: delete %s: %s", aws.ToString(e.Key), aws.ToString(e.Code)))
			}
		}
	}
	return errors.Join(errs...)
}

// strayPath reports whether p can be the Path of a stray: no driver
// path, but a name below the root, not one of the writer's own objects.
func strayPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsRune(p, 0) &&
		!strings.HasSuffix(p, s3StateSuffix) && !strings.HasSuffix(p, s3PendingSuffix)
}
