package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// checkPath is CheckPath plus the names the driver keeps for itself.
func (d *S3) checkPath(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	if strings.HasSuffix(p, s3StateSuffix) || strings.HasSuffix(p, s3PendingSuffix) {
		return fmt.Errorf("%w %q: names end in %s and %s are reserved for uploads in progress", ErrInvalidPath, p, s3StateSuffix, s3PendingSuffix)
	}
	return nil
}

// checkNotRoot also refuses "/", which no write, move or delete may name.
func (d *S3) checkNotRoot(op, p string) error {
	if err := d.checkPath(p); err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("s3: %s %s: refusing to %s the root folder", op, p, op)
	}
	return nil
}

// pageSize is how many keys a listing asks for at once: S3's maximum,
// or less in tests of paging.
func (d *S3) pageSize() int32 {
	if d.listPageSize > 0 {
		return d.listPageSize
	}
	return 1000
}

// key is the object key of a driver path.
func (d *S3) key(p string) string { return d.prefix + strings.TrimPrefix(p, "/") }

// dirPrefix is the key prefix of everything below folder p.
func (d *S3) dirPrefix(p string) string {
	if p == "/" {
		return d.prefix
	}
	return d.key(p) + "/"
}

// isMarker reports whether an object is an empty "folder/" key, as AWS
// DataSync and some consoles leave: it is no file, and registries that
// showed it got tags with an empty name.
func isMarker(key string, size *int64) bool {
	return strings.HasSuffix(key, "/") && aws.ToInt64(size) == 0
}

// validRel reports whether rel, a key below a listed prefix, maps to a
// valid driver path: keys written by other tools ("a//b", "./x") are
// skipped rather than shown as paths no call could use.
func validRel(rel string) bool {
	if rel == "" {
		return false
	}
	for _, e := range strings.Split(rel, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// GetContent reads a whole object.
func (d *S3) GetContent(ctx context.Context, p string) ([]byte, error) {
	if err := d.checkPath(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(d.key(p))})
	if err != nil {
		return nil, d.fail("read", p, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("s3: read %s: %w", p, err)
	}
	return b, nil
}

// PutContent writes a whole object; S3 replaces objects atomically.
func (d *S3) PutContent(ctx context.Context, p string, content []byte) error {
	if err := d.checkNotRoot("write", p); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.putObject(ctx, d.key(p), content, true); err != nil {
		return fmt.Errorf("s3: write %s: %w", p, err)
	}
	return nil
}

// putObject stores content at key; data objects get the configured
// encryption, storage class and ACL, the writer's state objects only the
// encryption (they are small and short-lived).
func (d *S3) putObject(ctx context.Context, key string, content []byte, data bool) error {
	_, err := d.putObjectETag(ctx, key, content, data)
	return err
}

func (d *S3) putObjectETag(ctx context.Context, key string, content []byte, data bool) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:        &d.bucket,
		Key:           &key,
		Body:          bytes.NewReader(content),
		ContentLength: aws.Int64(int64(len(content))),
		ContentType:   aws.String("application/octet-stream"),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	if data {
		in.StorageClass, in.ACL = d.storageClass, d.acl
	}
	var out *s3.PutObjectOutput
	err := retryFolderRace(ctx, func() (err error) {
		in.Body = bytes.NewReader(content)
		out, err = d.client.PutObject(ctx, in)
		return err
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// retryFolderRace runs op again, a few times, when it fails with
// ExistingObjectIsDirectory: versitygw's posix backend reports so when a
// concurrent delete pruned the folder it was creating the object in
// (measured with drivertest's ConcurrentWriteDelete), and a prompt retry
// succeeds. A key that really is a folder there fails the same way after
// a few milliseconds.
func retryFolderRace(ctx context.Context, op func() error) error {
	var err error
	for i := range 4 {
		if err = op(); err == nil || errorCode(err) != "ExistingObjectIsDirectory" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5<<i) * time.Millisecond):
		}
	}
	return err
}

func (d *S3) kmsKeyIDPtr() *string {
	if d.kmsKeyID == "" {
		return nil
	}
	return aws.String(d.kmsKeyID)
}

// emptyReader is what Reader returns at offset == size: S3 answers a
// range starting at the end with 416, though nothing is wrong.
var emptyReader = io.NopCloser(strings.NewReader(""))

// Reader streams an object from offset with a ranged GET.
func (d *S3) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := d.checkPath(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if offset < 0 {
		size, err := d.objectSize(ctx, p)
		if err != nil {
			return nil, err
		}
		return nil, InvalidOffset(p, offset, size)
	}
	in := &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(d.key(p))}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := d.client.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusRequestedRangeNotSatisfiable || errorCode(err) == "InvalidRange" {
			size, serr := d.objectSize(ctx, p)
			if serr != nil {
				return nil, serr
			}
			if size == offset {
				return emptyReader, nil
			}
			return nil, InvalidOffset(p, offset, size)
		}
		return nil, d.fail("read", p, err)
	}
	return out.Body, nil
}

// objectSize is the size of the committed object at p.
func (d *S3) objectSize(ctx context.Context, p string) (int64, error) {
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: aws.String(d.key(p))})
	if err != nil {
		return 0, d.fail("stat", p, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Stat describes an object, a write in progress (its size so far, from
// the state object: the upload status endpoint needs it), or a folder
// (a prefix with something below it).
func (d *S3) Stat(ctx context.Context, p string) (FileInfo, error) {
	if err := d.checkPath(p); err != nil {
		return FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	if p == "/" {
		// The bucket is there (NewS3 checked), so its root is too.
		return FileInfo{Path: p, IsDir: true}, nil
	}
	key := d.key(p)
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if err == nil {
		return FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
	}
	if !isNoKey(err) {
		return FileInfo{}, d.fail("stat", p, err)
	}
	st, mod, err := d.loadState(ctx, key)
	switch {
	case err == nil:
		return FileInfo{Path: p, Size: st.size(), ModTime: mod}, nil
	case !errors.Is(err, ErrNotFound):
		return FileInfo{}, fmt.Errorf("s3: stat %s: %w", p, err)
	}
	mod, found, err := d.firstBelow(ctx, key+"/")
	if err != nil {
		return FileInfo{}, d.fail("stat", p, err)
	}
	if !found {
		return FileInfo{}, NotFound(p)
	}
	return FileInfo{Path: p, IsDir: true, ModTime: mod}, nil
}

// firstBelow reports whether any key other than folder markers starts
// with prefix, and the first one's modification time.
func (d *S3) firstBelow(ctx context.Context, prefix string) (time.Time, bool, error) {
	in := &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix, MaxKeys: aws.Int32(min(10, d.pageSize()))}
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return time.Time{}, false, err
		}
		for _, o := range out.Contents {
			if !isMarker(aws.ToString(o.Key), o.Size) {
				return aws.ToTime(o.LastModified), true, nil
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return time.Time{}, false, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// notFolder is the error for listing or walking p when it has nothing
// below it: "not a folder" when p is a file, else not found.
func (d *S3) notFolder(ctx context.Context, op, p string) error {
	if p == "/" {
		return nil
	}
	fi, err := d.Stat(ctx, p)
	if err != nil {
		return err
	}
	if !fi.IsDir {
		return fmt.Errorf("s3: %s %s: not a folder", op, p)
	}
	return nil // something appeared below it meanwhile
}

// List returns a folder's children, sorted, with one delimited listing.
// A write in progress shows as its file; its state objects never show.
// DataSync's "folder/" markers are ignored, but a child folder holding
// nothing else still shows (a delimited listing cannot tell it apart
// without a request per child); Stat and Walk ignore it.
func (d *S3) List(ctx context.Context, p string) ([]string, error) {
	if err := d.checkPath(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := d.dirPrefix(p)
	in := &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix, Delimiter: aws.String("/"), MaxKeys: aws.Int32(d.pageSize())}
	seen := map[string]bool{}
	add := func(name string) {
		if validRel(name) && !strings.Contains(name, "/") {
			seen[name] = true
		}
	}
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, d.fail("list", p, err)
		}
		for _, cp := range out.CommonPrefixes {
			add(strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			name := strings.TrimPrefix(k, prefix)
			switch {
			case isMarker(k, o.Size), strings.HasSuffix(name, s3PendingSuffix):
			case strings.HasSuffix(name, s3StateSuffix):
				add(strings.TrimSuffix(name, s3StateSuffix))
			default:
				add(name)
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	if len(seen) == 0 {
		if err := d.notFolder(ctx, "list", p); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	base := strings.TrimSuffix(p, "/") + "/"
	for i, n := range names {
		names[i] = base + n
	}
	return names, nil
}

// maxKeySuffix sorts after every key that continues a prefix (U+10FFFF
// is the largest code point, and S3 keys are UTF-8 compared byte-wise),
// so StartAfter = prefix + maxKeySuffix resumes a listing past it.
const maxKeySuffix = "\U0010FFFF"

// Walk lists every key below p (no delimiter, a page at a time) and
// synthesises the folders: a folder is visited right before the first
// key below it, and all keys below a folder are contiguous in S3's key
// order, so nothing is buffered beyond a page. Entries of one folder
// come in byte order of their keys, which puts a folder "a" (key "a/...")
// after a sibling "a-b"; see Driver.Walk. ErrSkipDir on a folder resumes
// the listing after its keys instead of paging through them.
func (d *S3) Walk(ctx context.Context, p string, fn func(FileInfo) error) error {
	if err := d.checkPath(p); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix := d.dirPrefix(p)
	base := strings.TrimSuffix(p, "/") + "/"
	in := &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix, MaxKeys: aws.Int32(d.pageSize())}
	var (
		open    []string        // folders (rel paths) around the last entry, outermost first
		skip    string          // rel prefix ("a/b/") of a skipped folder
		files   map[string]bool // files shown in the innermost open folder
		visited bool
	)
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return d.fail("walk", p, err)
		}
		var lastKey string
		for _, o := range out.Contents {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := aws.ToString(o.Key)
			lastKey = k
			rel := strings.TrimPrefix(k, prefix)
			if isMarker(k, o.Size) || strings.HasSuffix(rel, s3PendingSuffix) {
				continue
			}
			inProgress := strings.HasSuffix(rel, s3StateSuffix)
			rel = strings.TrimSuffix(rel, s3StateSuffix)
			if !validRel(rel) || (skip != "" && strings.HasPrefix(rel, skip)) {
				continue
			}
			skip = ""
			visited = true

			// Close the folders this key is not in; open those it is.
			elems := strings.Split(rel, "/")
			dirs := elems[:len(elems)-1]
			common := 0
			for common < len(open) && common < len(dirs) && open[common] == strings.Join(dirs[:common+1], "/") {
				common++
			}
			if common != len(open) || common != len(dirs) {
				files = nil
			}
			open = open[:common]
			skipped := false
			for i := common; i < len(dirs); i++ {
				dir := strings.Join(dirs[:i+1], "/")
				open = append(open, dir)
				err := fn(FileInfo{Path: base + dir, IsDir: true, ModTime: aws.ToTime(o.LastModified)})
				if errors.Is(err, ErrSkipDir) {
					skip, skipped = dir+"/", true
					break
				}
				if err != nil {
					return err
				}
			}
			if skipped {
				continue
			}

			fi := FileInfo{Path: base + rel, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			if files[rel] {
				continue // an append in progress to a file already shown
			}
			if inProgress {
				st, mod, err := d.loadState(ctx, k[:len(k)-len(s3StateSuffix)])
				if errors.Is(err, ErrNotFound) {
					continue // committed or cancelled meanwhile
				}
				if err != nil {
					return fmt.Errorf("s3: walk %s: %w", p, err)
				}
				fi.Size, fi.ModTime = st.size(), mod
			}
			if files == nil {
				files = map[string]bool{}
			}
			files[rel] = true
			if err := fn(fi); err != nil && !errors.Is(err, ErrSkipDir) {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		if skip != "" && strings.HasPrefix(strings.TrimPrefix(lastKey, prefix), skip) {
			// Jump over the rest of the skipped folder.
			in.ContinuationToken = nil
			in.StartAfter = aws.String(prefix + skip + maxKeySuffix)
		} else {
			in.ContinuationToken, in.StartAfter = out.NextContinuationToken, nil
		}
	}
	if !visited {
		return d.notFolder(ctx, "walk", p)
	}
	return nil
}

// Move copies src to dst and deletes src: CopyObject below
// multipartcopythresholdsize, a multipart copy above it.
func (d *S3) Move(ctx context.Context, src, dst string) error {
	if err := d.checkNotRoot("move", src); err != nil {
		return err
	}
	if err := d.checkNotRoot("move", dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	srcKey, dstKey := d.key(src), d.key(dst)
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &srcKey})
	if err != nil {
		return d.fail("move", src, err)
	}
	size := aws.ToInt64(head.ContentLength)
	if size <= d.copyThreshold {
		in := &s3.CopyObjectInput{
			Bucket:       &d.bucket,
			Key:          &dstKey,
			CopySource:   aws.String(copySource(d.bucket, srcKey)),
			StorageClass: d.storageClass,
			ACL:          d.acl,
		}
		in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
		err := retryFolderRace(ctx, func() error {
			_, err := d.client.CopyObject(ctx, in)
			return err
		})
		if err != nil {
			return d.fail("move", src, err)
		}
	} else if err := d.multipartCopy(ctx, srcKey, dstKey, size); err != nil {
		return d.fail("move", src, err)
	}
	if _, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &srcKey}); err != nil {
		return fmt.Errorf("s3: move %s to %s: copied, but deleting the source: %w", src, dst, err)
	}
	return nil
}

// copySource is the URL-escaped "bucket/key" CopyObject wants.
func copySource(bucket, key string) string {
	return strings.ReplaceAll(url.PathEscape(bucket+"/"+key), "%2F", "/")
}

// copyRanges cuts [0, size) into ranges of about chunk bytes, each at
// least s3MinPartSize unless it is the only one: a short last range is
// merged into the one before, so the ranges can also be the non-last
// parts of an upload that continues (an append to a committed object).
func copyRanges(size, chunk int64) [][2]int64 {
	// Respect S3's part count limit for huge objects.
	chunk = max(chunk, (size+s3MaxParts-1)/s3MaxParts)
	var rs [][2]int64
	for off := int64(0); off < size; off += chunk {
		rs = append(rs, [2]int64{off, min(off+chunk, size)})
	}
	if n := len(rs); n > 1 && rs[n-1][1]-rs[n-1][0] < s3MinPartSize {
		rs[n-2][1] = rs[n-1][1]
		rs = rs[:n-1]
	}
	return rs
}

// createUpload starts a multipart upload at key with the data options.
func (d *S3) createUpload(ctx context.Context, key string) (string, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket:       &d.bucket,
		Key:          &key,
		ContentType:  aws.String("application/octet-stream"),
		StorageClass: d.storageClass,
		ACL:          d.acl,
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse, d.kmsKeyIDPtr()
	out, err := d.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

// copyParts copies ranges of srcKey into upload id at dstKey as parts
// first, first+1, ..., at most copyConcurrency at a time.
func (d *S3) copyParts(ctx context.Context, srcKey, dstKey, id string, ranges [][2]int64, first int32) ([]s3Part, error) {
	parts := make([]s3Part, len(ranges))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, d.copyConcurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i, r := range ranges {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			n := first + int32(i)
			out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
				Bucket:          &d.bucket,
				Key:             &dstKey,
				UploadId:        &id,
				PartNumber:      aws.Int32(n),
				CopySource:      aws.String(copySource(d.bucket, srcKey)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]-1)),
			})
			if err == nil && out.CopyPartResult == nil {
				err = errors.New("UploadPartCopy returned no result")
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("copying part %d: %w", n, err)
				}
				mu.Unlock()
				cancel()
				return
			}
			parts[i] = s3Part{Number: n, ETag: aws.ToString(out.CopyPartResult.ETag), Size: r[1] - r[0]}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return parts, firstErr
}

// multipartCopy copies srcKey to dstKey in parts of multipartcopychunksize.
func (d *S3) multipartCopy(ctx context.Context, srcKey, dstKey string, size int64) error {
	id, err := d.createUpload(ctx, dstKey)
	if err != nil {
		return err
	}
	parts, err := d.copyParts(ctx, srcKey, dstKey, id, copyRanges(size, d.copyChunkSize), 1)
	if err == nil {
		err = d.completeUpload(ctx, dstKey, id, parts)
	}
	if err != nil {
		d.abortUpload(context.WithoutCancel(ctx), dstKey, id)
	}
	return err
}

func (d *S3) completeUpload(ctx context.Context, key, id string, parts []s3Part) error {
	cp := make([]types.CompletedPart, len(parts))
	for i, pt := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(pt.Number), ETag: aws.String(pt.ETag)}
	}
	return retryFolderRace(ctx, func() error {
		_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          &d.bucket,
			Key:             &key,
			UploadId:        &id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
		})
		return err
	})
}

// abortUpload drops a multipart upload; one already gone is fine.
func (d *S3) abortUpload(ctx context.Context, key, id string) error {
	if id == "" {
		return nil
	}
	_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &id})
	if err != nil && !isNoKey(err) {
		return err
	}
	return nil
}

// Delete removes the object at p, a write in progress there (aborting
// its multipart upload), and every key below p, in DeleteObjects batches.
func (d *S3) Delete(ctx context.Context, p string) error {
	if err := d.checkNotRoot("delete", p); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	key := d.key(p)
	b := &deleteBatch{d: d, ctx: ctx}

	// The keys named p itself: the object and the state objects, and
	// whether anything is below p. Siblings sharing the prefix ("p-1")
	// come along in the listing and are passed over.
	below := false
	in := &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &key, Delimiter: aws.String("/"), MaxKeys: aws.Int32(d.pageSize())}
list:
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return d.fail("delete", p, err)
		}
		for _, o := range out.Contents {
			switch k := aws.ToString(o.Key); k {
			case key, key + s3StateSuffix, key + s3PendingSuffix:
				if err := b.add(k, true); err != nil {
					return fmt.Errorf("s3: delete %s: %w", p, err)
				}
			}
		}
		for _, cp := range out.CommonPrefixes {
			if aws.ToString(cp.Prefix) == key+"/" {
				below = true
			}
		}
		// Keys come sorted: past key + "/" nothing is ours.
		if below || !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break list
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	if below {
		prefix := key + "/"
		in := &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix, MaxKeys: aws.Int32(d.pageSize())}
		for {
			out, err := d.client.ListObjectsV2(ctx, in)
			if err != nil {
				return d.fail("delete", p, err)
			}
			for _, o := range out.Contents {
				k := aws.ToString(o.Key)
				if err := b.add(k, !isMarker(k, o.Size)); err != nil {
					return fmt.Errorf("s3: delete %s: %w", p, err)
				}
			}
			if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
				break
			}
			in.ContinuationToken = out.NextContinuationToken
		}
	}
	if err := b.flush(); err != nil {
		return fmt.Errorf("s3: delete %s: %w", p, err)
	}
	if !b.real {
		return NotFound(p)
	}
	return nil
}

// deleteBatch collects keys for DeleteObjects, aborting the multipart
// upload of each write-in-progress state object it meets first.
type deleteBatch struct {
	d    *S3
	ctx  context.Context
	keys []types.ObjectIdentifier
	real bool // something besides folder markers was found
}

func (b *deleteBatch) add(key string, real bool) error {
	if strings.HasSuffix(key, s3StateSuffix) {
		st, _, err := b.d.loadState(b.ctx, strings.TrimSuffix(key, s3StateSuffix))
		if err == nil {
			if err := b.d.abortUpload(b.ctx, strings.TrimSuffix(key, s3StateSuffix), st.UploadID); err != nil {
				return err
			}
		} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, errBadState) {
			return err
		}
	}
	b.real = b.real || real
	b.keys = append(b.keys, types.ObjectIdentifier{Key: aws.String(key)})
	if len(b.keys) >= s3DeleteBatch {
		return b.flush()
	}
	return nil
}

func (b *deleteBatch) flush() error {
	if len(b.keys) == 0 {
		return nil
	}
	out, err := b.d.client.DeleteObjects(b.ctx, &s3.DeleteObjectsInput{
		Bucket: &b.d.bucket,
		Delete: &types.Delete{Objects: b.keys, Quiet: aws.Bool(true)},
	})
	b.keys = b.keys[:0]
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

// RedirectURL is a presigned GET of the object, valid 20 minutes.
func (d *S3) RedirectURL(r *http.Request, p string) (string, error) {
	if err := d.checkPath(p); err != nil {
		return "", err
	}
	ctx := context.WithValue(r.Context(), noLimitKey{}, true) // signing sends nothing
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(d.key(p))})
	if err != nil {
		return "", fmt.Errorf("s3: presign %s: %w", p, err)
	}
	return req.URL, nil
}

// s3State is the JSON object kept at key + s3StateSuffix while a write is
// in progress: enough for any node to continue or finish it.
type s3State struct {
	UploadID    string   `json:"uploadId,omitempty"` // "" until the first part
	Parts       []s3Part `json:"parts,omitempty"`
	Pending     int64    `json:"pending"`               // bytes in the pending object
	PendingETag string   `json:"pendingETag,omitempty"` // detects a torn Close
}

type s3Part struct {
	Number int32  `json:"n"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

func (st *s3State) size() int64 {
	n := st.Pending
	for _, pt := range st.Parts {
		n += pt.Size
	}
	return n
}

// errBadState marks a state object that cannot be read back.
var errBadState = errors.New("corrupt upload state")

// loadState reads the state of a write in progress at key; ErrNotFound
// when there is none.
func (d *S3) loadState(ctx context.Context, key string) (*s3State, time.Time, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(key + s3StateSuffix)})
	if err != nil {
		if isNoKey(err) {
			return nil, time.Time{}, ErrNotFound
		}
		return nil, time.Time{}, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 4<<20))
	if err != nil {
		return nil, time.Time{}, err
	}
	var st s3State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w at %s: %v", errBadState, key+s3StateSuffix, err)
	}
	slices.SortFunc(st.Parts, func(a, b s3Part) int { return int(a.Number - b.Number) })
	return &st, aws.ToTime(out.LastModified), nil
}

// saveState writes the state object of a write in progress.
func (d *S3) saveState(ctx context.Context, key string, st *s3State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return d.putObject(ctx, key+s3StateSuffix, b, false)
}

// dropState removes the state objects of a write at key.
func (d *S3) dropState(ctx context.Context, key string) error {
	return d.deleteKeys(ctx, key+s3StateSuffix, key+s3PendingSuffix)
}

// deleteKeys deletes a few keys in one request; missing ones are fine.
func (d *S3) deleteKeys(ctx context.Context, keys ...string) error {
	b := &deleteBatch{d: d, ctx: ctx}
	for _, k := range keys {
		b.keys = append(b.keys, types.ObjectIdentifier{Key: aws.String(k)})
	}
	return b.flush()
}
