package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Writer writes p as an S3 multipart upload whose state lives in the
// bucket, so that any node can continue it (see FileWriter):
//
//   - key + ".regctl-upload" (JSON) holds the multipart upload id and the
//     parts uploaded so far, and the size of the tail;
//   - key + ".regctl-pending" holds the tail: the bytes after the last
//     part. Parts other than the last must be at least 5 MiB and an
//     in-progress part cannot be read back, so a short chunk waits there
//     for the next session.
//
// Parts are chunksize bytes while writing; Close turns a tail of 5 MiB or
// more into a part too, so the tail it saves is always small. Commit
// uploads the tail as the last part and completes the upload (or, with
// no part yet, writes the object with one PutObject), then removes the
// state objects.
//
// append=false abandons any write in progress at p (its multipart upload
// is aborted); a committed object stays readable until Commit replaces
// it. append=true continues the write in progress, or else a committed
// object (copied into a new upload: costly for big objects), and is
// ErrNotFound when there is neither.
func (d *S3) Writer(ctx context.Context, p string, append bool) (FileWriter, error) {
	if err := d.checkNotRoot("write", p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := d.key(p)
	// Write and Close take no context; a request that ends mid-body must
	// still be able to save what arrived.
	w := &s3Writer{d: d, path: p, key: key, ctx: context.WithoutCancel(ctx), stateDirty: true}
	st, _, err := d.loadState(ctx, key)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		st = nil
	case errors.Is(err, errBadState) && !append:
		st = &s3State{} // replaced below; its upload, if any, is lost
	default:
		return nil, fmt.Errorf("s3: write %s: %w", p, err)
	}

	if !append {
		if st != nil {
			if err := d.abortUpload(ctx, key, st.UploadID); err != nil {
				return nil, fmt.Errorf("s3: write %s: aborting the previous upload: %w", p, err)
			}
			if err := d.dropState(ctx, key); err != nil {
				return nil, fmt.Errorf("s3: write %s: %w", p, err)
			}
		}
		return w, nil
	}

	if st != nil {
		w.st, w.saved, w.stateDirty = *st, true, false
		if st.Pending > 0 {
			if w.buf, err = d.loadPending(ctx, key, st); err != nil {
				return nil, fmt.Errorf("s3: write %s: %w", p, err)
			}
		}
		w.size = st.size()
		return w, nil
	}
	if err := w.continueObject(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// loadPending reads the tail of a write in progress and checks it is the
// one the state names: a Close cut between writing the tail and the
// state would otherwise silently corrupt the file.
func (d *S3) loadPending(ctx context.Context, key string, st *s3State) ([]byte, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(key + s3PendingSuffix)})
	if err != nil {
		if isNoKey(err) {
			return nil, fmt.Errorf("%w: the pending data of %s is missing", errBadState, key)
		}
		return nil, err
	}
	defer out.Body.Close()
	b := bytes.NewBuffer(make([]byte, 0, st.Pending))
	if _, err := io.Copy(b, out.Body); err != nil {
		return nil, err
	}
	etag := aws.ToString(out.ETag)
	if int64(b.Len()) != st.Pending || (st.PendingETag != "" && etag != "" && etag != st.PendingETag) {
		return nil, fmt.Errorf("%w: the pending data of %s (%d bytes, ETag %s) is not what its state names (%d bytes, ETag %s); an earlier Close was interrupted: cancel the upload",
			errBadState, key, b.Len(), etag, st.Pending, st.PendingETag)
	}
	return b.Bytes(), nil
}

// continueObject starts an append to a committed object: a small one
// becomes the tail, a larger one is copied server-side into the first
// parts of a new upload.
func (w *s3Writer) continueObject(ctx context.Context) error {
	d := w.d
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &w.key})
	if err != nil {
		return d.fail("write", w.path, err)
	}
	size := aws.ToInt64(head.ContentLength)
	w.size = size
	if size < s3MinPartSize {
		out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &w.key})
		if err != nil {
			return d.fail("write", w.path, err)
		}
		defer out.Body.Close()
		b := bytes.NewBuffer(make([]byte, 0, size))
		if _, err := io.Copy(b, out.Body); err != nil {
			return fmt.Errorf("s3: write %s: %w", w.path, err)
		}
		if int64(b.Len()) != size {
			return fmt.Errorf("s3: write %s: the object changed while being read", w.path)
		}
		w.buf, w.bufDirty = b.Bytes(), true
		return nil
	}
	id, err := d.createUpload(ctx, w.key)
	if err != nil {
		return fmt.Errorf("s3: write %s: %w", w.path, err)
	}
	parts, err := d.copyParts(ctx, w.key, w.key, id, copyRanges(size, d.copyChunkSize), 1)
	if err != nil {
		d.abortUpload(context.WithoutCancel(ctx), w.key, id)
		return fmt.Errorf("s3: write %s: %w", w.path, err)
	}
	w.st = s3State{UploadID: id, Parts: parts}
	return nil
}

// s3Writer is one session of a write; see S3.Writer.
type s3Writer struct {
	d    *S3
	path string
	key  string
	ctx  context.Context

	mu         sync.Mutex
	st         s3State // parts uploaded; tail as last saved
	buf        []byte  // bytes after the last part
	bufDirty   bool    // buf is not what the pending object holds
	stateDirty bool    // st is not what the state object holds
	saved      bool    // a state object exists in the bucket
	size       int64
	state      writerState
}

func (w *s3Writer) errState(op string) error {
	return fmt.Errorf("s3: %s %s: writer already %s", op, w.path, w.state)
}

// Write buffers up to chunksize bytes and uploads each full buffer as a
// part.
func (w *s3Writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return 0, w.errState("write")
	}
	n := 0
	for len(b) > 0 {
		if int64(len(w.buf)) >= w.d.chunkSize {
			if err := w.flushPart(w.ctx); err != nil {
				return n, err
			}
		}
		if w.buf == nil {
			// Grown by append up to chunksize: most uploads are small.
			w.buf = make([]byte, 0, min(w.d.chunkSize, 256<<10))
		}
		take := min(int(w.d.chunkSize)-len(w.buf), len(b))
		w.buf = append(w.buf, b[:take]...)
		b = b[take:]
		n += take
		w.size += int64(take)
		w.bufDirty = true
	}
	if int64(len(w.buf)) >= w.d.chunkSize {
		if err := w.flushPart(w.ctx); err != nil {
			return n, err
		}
	}
	return n, nil
}

// flushPart uploads the buffer as the next part, starting the multipart
// upload on the first.
func (w *s3Writer) flushPart(ctx context.Context) error {
	d := w.d
	if w.st.UploadID == "" {
		id, err := d.createUpload(ctx, w.key)
		if err != nil {
			return fmt.Errorf("s3: write %s: %w", w.path, err)
		}
		w.st.UploadID, w.stateDirty = id, true
	}
	n := int32(len(w.st.Parts) + 1)
	if n > s3MaxParts {
		return fmt.Errorf("s3: write %s: more than %d parts: raise chunksize", w.path, s3MaxParts)
	}
	out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &d.bucket,
		Key:           &w.key,
		UploadId:      &w.st.UploadID,
		PartNumber:    aws.Int32(n),
		Body:          bytes.NewReader(w.buf),
		ContentLength: aws.Int64(int64(len(w.buf))),
	})
	if err != nil {
		return fmt.Errorf("s3: write %s: part %d: %w", w.path, n, err)
	}
	w.st.Parts = append(w.st.Parts, s3Part{Number: n, ETag: aws.ToString(out.ETag), Size: int64(len(w.buf))})
	w.buf = w.buf[:0]
	w.stateDirty, w.bufDirty = true, true
	return nil
}

func (w *s3Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Close ends the session durably: a tail of at least 5 MiB becomes a
// part, a shorter one goes to the pending object, then the state object
// is written, so a later Writer(append=true) on any node continues here.
func (w *s3Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return nil
	}
	w.state = writerClosed
	ctx := w.ctx
	if len(w.buf) >= s3MinPartSize {
		if err := w.flushPart(ctx); err != nil {
			return err
		}
	}
	if w.bufDirty {
		w.st.Pending, w.st.PendingETag = 0, ""
		if len(w.buf) > 0 {
			etag, err := w.d.putObjectETag(ctx, w.key+s3PendingSuffix, w.buf, false)
			if err != nil {
				return fmt.Errorf("s3: close %s: %w", w.path, err)
			}
			w.st.Pending, w.st.PendingETag = int64(len(w.buf)), etag
		}
		// An emptied tail leaves a stale pending object that the state no
		// longer names; Commit or Cancel removes it.
		w.bufDirty, w.stateDirty = false, true
	}
	if w.stateDirty || !w.saved {
		if err := w.d.saveState(ctx, w.key, &w.st); err != nil {
			return fmt.Errorf("s3: close %s: %w", w.path, err)
		}
		w.saved, w.stateDirty = true, false
	}
	return nil
}

// Commit makes the object appear: one PutObject when no part was
// uploaded, else the tail as the last part and CompleteMultipartUpload.
func (w *s3Writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return w.errState("commit")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Whatever happens next, this session is over; what Close saved
	// earlier stays for a retry.
	w.state = writerClosed
	d := w.d
	if w.st.UploadID == "" {
		if err := d.putObject(ctx, w.key, w.buf, true); err != nil {
			return fmt.Errorf("s3: commit %s: %w", w.path, err)
		}
	} else {
		if len(w.buf) > 0 {
			if err := w.flushPart(ctx); err != nil {
				return err
			}
		}
		if err := d.completeUpload(ctx, w.key, w.st.UploadID, w.st.Parts); err != nil {
			return fmt.Errorf("s3: commit %s: %w", w.path, err)
		}
	}
	w.state = writerCommitted
	if w.saved {
		// A stale state would make the next append resume a finished
		// upload.
		if err := d.dropState(context.WithoutCancel(ctx), w.key); err != nil {
			return fmt.Errorf("s3: commit %s: committed, but removing the upload state failed: %w", w.path, err)
		}
	}
	return nil
}

// Cancel aborts the multipart upload and removes the state objects and
// any committed object at the path: the whole file is abandoned, as on
// the filesystem. It works on a closed writer too.
func (w *s3Writer) Cancel(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writerCommitted:
		return w.errState("cancel")
	case writerCancelled:
		return nil
	}
	w.state = writerCancelled
	d := w.d
	if err := d.abortUpload(ctx, w.key, w.st.UploadID); err != nil {
		return fmt.Errorf("s3: cancel %s: %w", w.path, err)
	}
	if err := d.deleteKeys(ctx, w.key, w.key+s3StateSuffix, w.key+s3PendingSuffix); err != nil {
		return fmt.Errorf("s3: cancel %s: %w", w.path, err)
	}
	return nil
}
