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
// Upload state objects and 0-byte "folder/" markers are skipped. A
// missing folder lists nothing.
func (d *S3) ListFiles(ctx context.Context, p string, fn func(fi FileInfo, md5 string) error) error {
	if err := d.checkPath(p); err != nil {
		return err
	}
	prefix := d.dirPrefix(p)
	in := &s3.ListObjectsV2Input{Bucket: aws.String(d.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(d.pageSize())}
	md5OK := d.ETagIsMD5()
	for {
		var page *listPage
		out, err := d.client.ListObjectsV2(ctx, in, listFast(&page))
		if err != nil {
			return d.fail("list", p, err)
		}
		if page == nil { // a page the SDK had to decode
			page = sdkListPage(out)
		}
		for _, o := range page.objects {
			k := o.key
			if strings.HasSuffix(k, "/") || strings.HasSuffix(k, s3StateSuffix) || strings.HasSuffix(k, s3PendingSuffix) {
				continue
			}
			sum := ""
			if etag := strings.Trim(o.etag, `"`); md5OK && !strings.Contains(etag, "-") {
				sum = strings.ToLower(etag) // a multipart ETag is no MD5
			}
			fi := FileInfo{Path: "/" + strings.TrimPrefix(k, d.prefix), Size: o.size, ModTime: o.modTime}
			if err := fn(fi, sum); err != nil {
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

// DeleteMany removes files (never folders) with DeleteObjects, 1000 keys
// a request. Paths already gone are not errors; the paths that could
// not be deleted are named in the error.
func (d *S3) DeleteMany(ctx context.Context, paths []string) error {
	var errs []error
	for start := 0; start < len(paths); start += 1000 {
		batch := paths[start:min(start+1000, len(paths))]
		objs := make([]types.ObjectIdentifier, 0, len(batch))
		for _, p := range batch {
			if err := d.checkPath(p); err != nil {
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
