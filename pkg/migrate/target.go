package migrate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"regctl/pkg/storage"
)

// object is what a listing tells about one target key.
type object struct {
	size  int64
	etag  string // without quotes
	mtime time.Time
}

// marker reports whether a key is an empty "folder/" object, as AWS
// DataSync and some consoles leave: registries have shown them as tags
// with an empty name.
func marker(key string, size int64) bool { return strings.HasSuffix(key, "/") && size == 0 }

func objectOf(o types.Object) object {
	return object{size: aws.ToInt64(o.Size), etag: strings.Trim(aws.ToString(o.ETag), `"`), mtime: aws.ToTime(o.LastModified)}
}

// target wraps the S3 driver with the raw requests a bulk copy needs.
type target struct {
	d      *storage.S3
	c      *s3.Client
	bucket string
	base   string // key of storage.Root plus "/"
	// bodyOpts are the options of requests with a body: unsigned, unless
	// checksum = when_supported asks for the SDK's own handling.
	bodyOpts []func(*s3.Options)
}

func newTarget(d *storage.S3, conns int) *target {
	d = d.WithConnections(conns)
	t := &target{d: d, c: d.Client(), bucket: d.Bucket(), base: d.Key(storage.Root) + "/"}
	if t.c.Options().RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired {
		t.bodyOpts = append(t.bodyOpts, unsigned)
	}
	return t
}

// key is the object key of rel.
func (t *target) key(rel string) string { return t.base + rel }

// rel is the relative path of a key below base.
func (t *target) rel(key string) string { return strings.TrimPrefix(key, t.base) }

// listLevel lists one folder with a delimiter: the objects right in it
// (by name; "" is a marker of the folder itself) and its subfolders.
func (t *target) listLevel(ctx context.Context, rel string) (map[string]object, []string, error) {
	prefix := t.base
	if rel != "" {
		prefix = t.key(rel) + "/"
	}
	in := &s3.ListObjectsV2Input{Bucket: &t.bucket, Prefix: &prefix, Delimiter: aws.String("/")}
	files := map[string]object{}
	var dirs []string
	for {
		out, err := t.c.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("listing s3://%s/%s: %w", t.bucket, prefix, err)
		}
		for _, cp := range out.CommonPrefixes {
			if name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"); name != "" {
				dirs = append(dirs, name)
			}
		}
		for _, o := range out.Contents {
			files[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = objectOf(o)
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return files, dirs, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// listTree calls fn for every key below folder rel, a page at a time:
// size, ETag and modification time come with the listing, so nothing
// needs a HEAD.
func (t *target) listTree(ctx context.Context, rel string, fn func(key string, o object)) error {
	prefix := t.key(rel) + "/"
	in := &s3.ListObjectsV2Input{Bucket: &t.bucket, Prefix: &prefix}
	for {
		out, err := t.c.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("listing s3://%s/%s: %w", t.bucket, prefix, err)
		}
		for _, o := range out.Contents {
			fn(aws.ToString(o.Key), objectOf(o))
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// unsigned sends the body unsigned: every upload carries Content-MD5,
// which the server checks, so hashing each body once more with SHA-256
// for the signature would only cost CPU.
var unsigned = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

func md5Header(sum []byte) *string { return aws.String(base64.StdEncoding.EncodeToString(sum)) }

// put stores body (size bytes, MD5 sum) at rel with one PutObject.
func (t *target) put(ctx context.Context, rel string, body io.ReadSeeker, size int64, sum []byte) error {
	in := t.d.PutObjectInput(driverPath(rel))
	in.Body, in.ContentLength, in.ContentMD5 = body, aws.Int64(size), md5Header(sum)
	out, err := t.c.PutObject(ctx, in, t.bodyOpts...)
	if err != nil {
		return err
	}
	return t.checkETag(aws.ToString(out.ETag), sum)
}

// checkETag compares the ETag of a single-part write with the MD5 sent,
// where the ETag is one.
func (t *target) checkETag(etag string, sum []byte) error {
	etag = strings.Trim(etag, `"`)
	if t.d.ETagIsMD5() && isMD5(etag) && etag != hex.EncodeToString(sum) {
		return fmt.Errorf("the server stored ETag %s, not the MD5 of what was sent (%x)", etag, sum)
	}
	return nil
}

// isMD5 reports whether an ETag has the form of a single-part ETag.
func isMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// get reads a whole object.
func (t *target) get(ctx context.Context, rel string) (io.ReadCloser, error) {
	out, err := t.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.bucket, Key: aws.String(t.key(rel))})
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// getSmall reads a whole object of at most limit bytes.
func (t *target) getSmall(ctx context.Context, rel string, limit int64) ([]byte, error) {
	body, err := t.get(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, limit+1))
}

// upload is a multipart upload in progress found in the bucket.
type upload struct {
	key, id   string
	initiated time.Time
}

// uploads lists the multipart uploads in progress below the root, by
// key: a killed run's copies of large blobs, which a new run resumes.
func (t *target) uploads(ctx context.Context) (map[string][]upload, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: &t.bucket, Prefix: aws.String(t.base)}
	found := map[string][]upload{}
	for {
		out, err := t.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the multipart uploads in s3://%s/%s: %w", t.bucket, t.base, err)
		}
		for _, u := range out.Uploads {
			k := aws.ToString(u.Key)
			if excluded(t.rel(k)) {
				continue // the registry's own uploads
			}
			found[k] = append(found[k], upload{key: k, id: aws.ToString(u.UploadId), initiated: aws.ToTime(u.Initiated)})
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

// part is one uploaded part.
type part struct {
	etag string
	size int64
}

// parts lists the parts of an upload in progress.
func (t *target) parts(ctx context.Context, key, id string) (map[int32]part, error) {
	in := &s3.ListPartsInput{Bucket: &t.bucket, Key: &key, UploadId: &id}
	found := map[int32]part{}
	for {
		out, err := t.c.ListParts(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, p := range out.Parts {
			found[aws.ToInt32(p.PartNumber)] = part{etag: strings.Trim(aws.ToString(p.ETag), `"`), size: aws.ToInt64(p.Size)}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextPartNumberMarker == nil {
			return found, nil
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
}

func (t *target) createUpload(ctx context.Context, rel string) (string, error) {
	out, err := t.c.CreateMultipartUpload(ctx, t.d.CreateMultipartUploadInput(driverPath(rel)))
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

func (t *target) uploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64, sum []byte) (string, error) {
	out, err := t.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &t.bucket, Key: &key, UploadId: &id, PartNumber: aws.Int32(n),
		Body: body, ContentLength: aws.Int64(size), ContentMD5: md5Header(sum),
	}, t.bodyOpts...)
	if err != nil {
		return "", err
	}
	etag := strings.Trim(aws.ToString(out.ETag), `"`)
	if err := t.checkETag(etag, sum); err != nil {
		return "", fmt.Errorf("part %d: %w", n, err)
	}
	return etag, nil
}

func (t *target) completeUpload(ctx context.Context, key, id string, etags []string) error {
	cp := make([]types.CompletedPart, len(etags))
	for i, e := range etags {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(`"` + e + `"`)}
	}
	_, err := t.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &t.bucket, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
	})
	return err
}

func (t *target) abortUpload(ctx context.Context, key, id string) error {
	_, err := t.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &t.bucket, Key: &key, UploadId: &id})
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return nil
	}
	return err
}

// deleteKeys deletes up to 1000 keys in one DeleteObjects request.
func (t *target) deleteKeys(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := t.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &t.bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return errors.Join(errs...)
}

// md5Of hashes r.
func md5Of(r io.Reader) ([]byte, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// sameContent compares small content with an object: by its ETag when
// that is the content's MD5, else by reading it.
func (t *target) sameContent(ctx context.Context, rel string, o object, content []byte) (bool, error) {
	if int64(len(content)) != o.size {
		return false, nil
	}
	if t.d.ETagIsMD5() && isMD5(o.etag) {
		sum := md5.Sum(content)
		return hex.EncodeToString(sum[:]) == o.etag, nil
	}
	got, err := t.getSmall(ctx, rel, o.size)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, content), nil
}
