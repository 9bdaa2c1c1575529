package registryd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/notify"
	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// Upload state lives in storage, never in memory, so that any node on the
// same storage (or a restarted one, or Distribution itself) can carry on
// an upload another one started:
//
//	_uploads/<id>/data                     the bytes so far
//	_uploads/<id>/startedat                RFC 3339 UTC, for purging
//	_uploads/<id>/hashstates/sha256/<size> sha256 state after <size> bytes
//
// Each request on one upload holds the node-local lock "upload:<id>";
// clients do not send concurrent requests for one upload anyway.

// uploadIDRE is a version 4 UUID as Distribution and regctl make them.
// The id becomes a path component, so nothing else may pass.
var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// maxIgnoredBody is how much of a body a request that takes none may
// carry (a stray "{}", say) before it is refused rather than read.
const maxIgnoredBody = 4 << 10

// copyBufferSize is the buffer for copying request bodies to storage;
// buffers are pooled, since most blobs (configs) are small and frequent.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// newUploadID makes a random (version 4) UUID.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func errUploadUnknown() error {
	return ocierr.New(http.StatusNotFound, CodeBlobUploadUnknown, "blob upload unknown to registry")
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a mount, a
// monolithic upload (?digest=) or a new upload session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, name string) error {
	ctx := r.Context()
	q := r.URL.Query()
	if q.Has("mount") {
		mounted, err := s.mountBlob(w, r, name, q.Get("mount"), q.Get("from"))
		if err != nil || mounted {
			return err
		}
		// Not mountable: the spec says to start an upload instead.
	}
	if q.Has("digest") {
		return s.monolithicUpload(w, r, name, q.Get("digest"))
	}
	if err := discardBody(r); err != nil {
		return err
	}
	id := newUploadID()
	if err := s.createUpload(ctx, name, id); err != nil {
		return err
	}
	s.log.Debug("upload started", "repository", name, "upload", id)
	s.uploadAccepted(w, r, name, id, 0, http.StatusAccepted)
	return nil
}

// mountBlob links an existing blob into name. It reports false (and no
// error) when the blob cannot be mounted, so the caller starts an upload.
func (s *Server) mountBlob(w http.ResponseWriter, r *http.Request, name, mount, from string) (bool, error) {
	ctx := r.Context()
	d, err := parseDigest(mount)
	if err != nil {
		return false, err
	}
	var size int64
	if from != "" {
		if err := checkName(from); err != nil {
			return false, err
		}
		if size, err = s.repoBlobSize(ctx, from, d); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
	} else if s.auth() != nil {
		// Without "from" there is no repository to check pull access
		// on: with auth on, a known digest must not open any blob.
		return false, nil
	} else if size, err = s.blobSize(ctx, d); err != nil {
		// The spec lets a registry mount without "from" when it finds
		// the blob; the global blob store is where to look.
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if err := discardBody(r); err != nil {
		return false, err
	}
	if err := s.checkFence(); err != nil {
		return false, err
	}
	if err := s.linkBlob(ctx, name, d); err != nil {
		return false, err
	}
	s.log.Info("blob mounted", "repository", name, "from", from, "digest", d)
	s.blobCreated(w, r, name, d)
	if s.notifying() {
		t := s.blobTarget(r, name, d, size)
		t.FromRepository = from
		s.emit(r, notify.ActionMount, t)
	}
	return true, nil
}

// monolithicUpload stores the body of POST ?digest= as a blob. The bytes
// go through an upload folder like any other upload, so a crash leaves
// something the purger removes rather than a partial blob.
func (s *Server) monolithicUpload(w http.ResponseWriter, r *http.Request, name, dgst string) error {
	ctx := r.Context()
	d, err := parseDigest(dgst)
	if err != nil {
		return err
	}
	id := newUploadID()
	startedAt := []byte(time.Now().UTC().Format(time.RFC3339))
	if err := s.driver.PutContent(ctx, storage.UploadStartedAtPath(name, id), startedAt); err != nil {
		return err
	}
	defer s.removeUpload(ctx, name, id)

	fw, err := s.driver.Writer(ctx, storage.UploadDataPath(name, id), false)
	if err != nil {
		return err
	}
	h := d.Algorithm().Hash()
	if _, err := copyBody(fw, h, r.Body, r.ContentLength); err != nil {
		fw.Cancel(context.WithoutCancel(ctx))
		return err
	}
	if err := fw.Commit(ctx); err != nil {
		fw.Cancel(context.WithoutCancel(ctx))
		return err
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return digestMismatch(d, got)
	}
	if err := s.commitBlob(ctx, name, storage.UploadDataPath(name, id), d); err != nil {
		return err
	}
	s.log.Info("blob uploaded", "repository", name, "digest", d, "size", fw.Size())
	s.blobCreated(w, r, name, d)
	if s.notifying() {
		s.emit(r, notify.ActionPush, s.blobTarget(r, name, d, fw.Size()))
	}
	return nil
}

// uploadStatus answers GET /v2/<name>/blobs/uploads/<id>.
func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	if err := s.checkUpload(ctx, name, id); err != nil {
		return err
	}
	if err := discardBody(r); err != nil {
		return err
	}
	size, err := s.uploadSize(ctx, name, id)
	if err != nil {
		return err
	}
	s.uploadAccepted(w, r, name, id, size, http.StatusNoContent)
	return nil
}

// patchUpload answers PATCH /v2/<name>/blobs/uploads/<id>: one chunk
// (with Content-Range) or a stream (without).
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	if !uploadIDRE.MatchString(id) {
		return errUploadUnknown()
	}
	defer s.locks.lock("upload:" + id)()
	if err := s.checkUpload(ctx, name, id); err != nil {
		return err
	}
	size, _, err := s.appendChunk(w, r, name, id, false)
	if err != nil {
		return err
	}
	s.uploadAccepted(w, r, name, id, size, http.StatusAccepted)
	return nil
}

// finishUpload answers PUT /v2/<name>/blobs/uploads/<id>?digest=: an
// optional last chunk, then verification and commit.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	if !uploadIDRE.MatchString(id) {
		return errUploadUnknown()
	}
	d, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	defer s.locks.lock("upload:" + id)()
	if err := s.checkUpload(ctx, name, id); err != nil {
		return err
	}

	var (
		size int64
		h    hash.Hash
	)
	if r.ContentLength != 0 {
		if size, h, err = s.appendChunk(w, r, name, id, true); err != nil {
			return err
		}
	} else {
		if size, err = s.uploadSize(ctx, name, id); err != nil {
			return err
		}
		if err := s.commitUploadData(ctx, name, id); err != nil {
			return err
		}
	}

	dataPath := storage.UploadDataPath(name, id)
	var got digest.Digest
	if d.Algorithm() == digest.SHA256 {
		if h == nil {
			if h, err = s.resumeSHA256(ctx, name, id, size); err != nil {
				return err
			}
		}
		got = digest.NewDigest(digest.SHA256, h)
	} else {
		// Only sha256 state is kept while uploading (nearly every blob
		// is sha256); other algorithms read the data once more.
		h = d.Algorithm().Hash()
		if err := s.hashData(ctx, dataPath, 0, size, h); err != nil {
			return err
		}
		got = digest.NewDigest(d.Algorithm(), h)
	}
	if got != d {
		// A mismatched upload cannot become right later: drop it, as
		// Distribution does, and commit nothing.
		s.removeUpload(ctx, name, id)
		return digestMismatch(d, got)
	}
	if err := s.commitBlob(ctx, name, dataPath, d); err != nil {
		return err
	}
	s.removeUpload(ctx, name, id)
	s.log.Info("blob uploaded", "repository", name, "digest", d, "size", size)
	s.blobCreated(w, r, name, d)
	if s.notifying() {
		s.emit(r, notify.ActionPush, s.blobTarget(r, name, d, size))
	}
	return nil
}

// cancelUpload answers DELETE /v2/<name>/blobs/uploads/<id>.
func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	if !uploadIDRE.MatchString(id) {
		return errUploadUnknown()
	}
	defer s.locks.lock("upload:" + id)()
	if err := s.checkUpload(ctx, name, id); err != nil {
		return err
	}
	if err := discardBody(r); err != nil {
		return err
	}
	if err := s.driver.Delete(ctx, storage.UploadDir(name, id)); err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUploadUnknown, "blob upload unknown to registry")
	}
	s.log.Debug("upload cancelled", "repository", name, "upload", id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkUpload checks that id is well formed and names an upload of repo.
// Distribution's test is the same: an upload is its startedat file.
func (s *Server) checkUpload(ctx context.Context, repo, id string) error {
	if !uploadIDRE.MatchString(id) {
		return errUploadUnknown()
	}
	if _, err := s.driver.Stat(ctx, storage.UploadStartedAtPath(repo, id)); err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUploadUnknown, "blob upload unknown to registry")
	}
	return nil
}

// createUpload writes a new upload's folder as Distribution does: the
// start time, an empty data file and the hash state at offset 0.
func (s *Server) createUpload(ctx context.Context, repo, id string) error {
	startedAt := []byte(time.Now().UTC().Format(time.RFC3339))
	err := s.driver.PutContent(ctx, storage.UploadStartedAtPath(repo, id), startedAt)
	if err == nil {
		// An empty write session, not an empty file: on S3 a committed
		// object would hide the in-progress upload the chunks go to.
		var fw storage.FileWriter
		if fw, err = s.driver.Writer(ctx, storage.UploadDataPath(repo, id), false); err == nil {
			err = fw.Close()
		}
	}
	if err == nil {
		err = s.saveHashState(ctx, repo, id, 0, sha256.New())
	}
	if err != nil {
		s.removeUpload(ctx, repo, id)
	}
	return err
}

// uploadSize is how many bytes an upload holds; a missing data file (an
// upload that never got any) is empty.
func (s *Server) uploadSize(ctx context.Context, repo, id string) (int64, error) {
	fi, err := s.driver.Stat(ctx, storage.UploadDataPath(repo, id))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	return fi.Size, err
}

// appendChunk appends the request body to an upload and saves the sha256
// state at the new size. It returns the new size and the hash state.
//
// When the body fails halfway, the bytes that did arrive are kept (they
// are a correct prefix): the client learns the offset to resume from with
// GET, as the spec intends. Cancelling instead would drop the whole
// upload, since a driver's Cancel removes the file, not just this chunk.
func (s *Server) appendChunk(w http.ResponseWriter, r *http.Request, repo, id string, final bool) (int64, hash.Hash, error) {
	ctx := r.Context()
	dataPath := storage.UploadDataPath(repo, id)
	size, hasData := int64(0), true
	fi, err := s.driver.Stat(ctx, dataPath)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		hasData = false // an upload that never got a data file
	case err != nil:
		return 0, nil, err
	default:
		size = fi.Size
	}
	expected := r.ContentLength
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return 0, nil, s.rangeInvalid(w, r, repo, id, size, err.Error())
		}
		if start != size {
			return 0, nil, s.rangeInvalid(w, r, repo, id, size,
				fmt.Sprintf("chunk starts at %d but the upload has %d bytes; chunks must be sent in order", start, size))
		}
		length := end - start + 1
		if expected >= 0 && expected != length {
			return 0, nil, ocierr.New(http.StatusBadRequest, CodeSizeInvalid,
				fmt.Sprintf("Content-Length %d does not match Content-Range %s", expected, cr))
		}
		expected = length
	}

	h, err := s.resumeSHA256(ctx, repo, id, size)
	if err != nil {
		return 0, nil, err
	}
	// Appending to a data file that vanished (purged meanwhile) fails
	// with "not found" rather than quietly starting over at 0.
	fw, err := s.driver.Writer(ctx, dataPath, hasData)
	if err != nil {
		return 0, nil, notFound(err, http.StatusNotFound, CodeBlobUploadUnknown, "blob upload unknown to registry")
	}
	if fw.Size() != size {
		// Another node appended in between; nothing was written here.
		fw.Close()
		return 0, nil, s.rangeInvalid(w, r, repo, id, fw.Size(), "the upload changed while this chunk was being sent")
	}
	if _, err := copyBody(fw, h, r.Body, expected); err != nil {
		// Keep what arrived, durably: the client resumes from the offset
		// GET reports. The hash state is not saved, so the next request
		// re-hashes those bytes from the last saved state where the
		// driver can read an unfinished file (the filesystem can; S3
		// cannot, and that upload must start over).
		fw.Close()
		return 0, nil, err
	}
	// Close keeps the file open for the next chunk, possibly on another
	// node; only the last chunk commits it.
	end := fw.Close
	if final {
		end = func() error { return fw.Commit(ctx) }
	}
	if err := end(); err != nil {
		return 0, nil, err
	}
	newSize := fw.Size()
	if newSize != size {
		// Without its hash state the next chunk would have to re-read
		// unfinished data, which S3 cannot: fail this chunk instead.
		if err := s.saveHashState(ctx, repo, id, newSize, h); err != nil {
			return 0, nil, fmt.Errorf("saving upload hash state: %w", err)
		}
		s.dropHashStates(ctx, repo, id, func(off int64) bool { return off != newSize })
	}
	return newSize, h, nil
}

// rangeInvalid builds a 416 that tells the client where the upload is.
func (s *Server) rangeInvalid(w http.ResponseWriter, r *http.Request, repo, id string, size int64, msg string) error {
	h := w.Header()
	h.Set("Location", s.location(r, "/v2/"+repo+"/blobs/uploads/"+id))
	h.Set("Range", uploadRange(size))
	h.Set("Docker-Upload-UUID", id)
	return ocierr.New(http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid, msg)
}

// uploadAccepted answers for an upload in progress (202 or 204).
func (s *Server) uploadAccepted(w http.ResponseWriter, r *http.Request, repo, id string, size int64, status int) {
	h := w.Header()
	h.Set("Location", s.location(r, "/v2/"+repo+"/blobs/uploads/"+id))
	h.Set("Range", uploadRange(size))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// uploadRange is the Range header for an upload of size bytes: the last
// byte's offset, and "0-0" for an empty upload, as Distribution answers.
func uploadRange(size int64) string {
	return "0-" + strconv.FormatInt(max(size-1, 0), 10)
}

// hashStateDir holds an upload's sha256 states, one file per offset.
func hashStateDir(repo, id string) string {
	return path.Dir(storage.UploadHashStatePath(repo, id, digest.SHA256, 0))
}

// saveHashState stores h (a crypto/sha256 hash) as the state at offset.
// The format is Go's MarshalBinary, as Distribution v3 writes it.
func (s *Server) saveHashState(ctx context.Context, repo, id string, offset int64, h hash.Hash) error {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return errors.New("sha256 hash cannot save its state")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return s.driver.PutContent(ctx, storage.UploadHashStatePath(repo, id, digest.SHA256, offset), b)
}

// hashStateOffsets lists the offsets an upload has sha256 states for,
// highest first.
func (s *Server) hashStateOffsets(ctx context.Context, repo, id string) ([]int64, error) {
	paths, err := s.driver.List(ctx, hashStateDir(repo, id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, p := range paths {
		if off, err := strconv.ParseInt(path.Base(p), 10, 64); err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	slices.Reverse(offs)
	return offs, nil
}

// dropHashStates deletes the states whose offset matches drop; failures
// only leave small files behind.
func (s *Server) dropHashStates(ctx context.Context, repo, id string, drop func(int64) bool) {
	offs, err := s.hashStateOffsets(ctx, repo, id)
	if err != nil {
		return
	}
	for _, off := range offs {
		if drop(off) {
			_ = s.driver.Delete(ctx, storage.UploadHashStatePath(repo, id, digest.SHA256, off))
		}
	}
}

// resumeSHA256 returns the sha256 state of an upload's first size bytes:
// the saved state at size, or the nearest one below it plus the bytes
// after it, or a re-hash of the data. States above size describe bytes
// that are gone (a cancelled chunk) and are deleted before they can be
// mistaken for new bytes of the same length.
func (s *Server) resumeSHA256(ctx context.Context, repo, id string, size int64) (hash.Hash, error) {
	offs, err := s.hashStateOffsets(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	h, from := sha256.New(), int64(0)
	for _, off := range offs {
		if off > size {
			_ = s.driver.Delete(ctx, storage.UploadHashStatePath(repo, id, digest.SHA256, off))
			continue
		}
		b, err := s.driver.GetContent(ctx, storage.UploadHashStatePath(repo, id, digest.SHA256, off))
		if err != nil {
			continue
		}
		cand := sha256.New()
		if u, ok := cand.(encoding.BinaryUnmarshaler); ok && u.UnmarshalBinary(b) == nil {
			h, from = cand, off
			break
		}
		s.log.Warn("ignoring corrupt upload hash state", "repository", repo, "upload", id, "offset", off)
	}
	if from < size {
		if err := s.hashData(ctx, storage.UploadDataPath(repo, id), from, size, h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// hashData feeds bytes [from, to) of a file to h.
func (s *Server) hashData(ctx context.Context, p string, from, to int64, h hash.Hash) error {
	if from >= to {
		return nil
	}
	rc, err := s.driver.Reader(ctx, p, from)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(h, rc, to-from); err != nil {
		return fmt.Errorf("hashing %s: %w", p, err)
	}
	return nil
}

// commitUploadData finishes an upload's data file when the last request
// brought no bytes: a file written in several sessions is only complete
// (and, on S3, readable and movable) after Commit.
func (s *Server) commitUploadData(ctx context.Context, repo, id string) error {
	p := storage.UploadDataPath(repo, id)
	fw, err := s.driver.Writer(ctx, p, true)
	if errors.Is(err, storage.ErrNotFound) {
		fw, err = s.driver.Writer(ctx, p, false) // an empty upload
	}
	if err != nil {
		return err
	}
	if err := fw.Commit(ctx); err != nil {
		fw.Close()
		return err
	}
	return nil
}

// commitBlob moves verified upload data into the blob store and links it
// into repo. Commits of one digest are serialised; when the blob is
// already there (another upload of the same bytes won) the upload's copy
// is simply left for removeUpload.
func (s *Server) commitBlob(ctx context.Context, repo, src string, d digest.Digest) error {
	defer s.locks.lock("blob:" + d.String())()
	dst := storage.BlobDataPath(d)
	_, err := s.driver.Stat(ctx, dst)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if err := s.driver.Move(ctx, src, dst); err != nil {
			return fmt.Errorf("committing blob %s: %w", d, err)
		}
	case err != nil:
		return err
	}
	// The point of commitment: the Stat above may have found a blob
	// that a job counting this node gone is sweeping.
	if err := s.checkFence(); err != nil {
		return err
	}
	return s.linkBlob(ctx, repo, d)
}

// removeUpload deletes an upload's folder. It runs after the response is
// decided, so it outlives a client that has gone away.
func (s *Server) removeUpload(ctx context.Context, repo, id string) {
	err := s.driver.Delete(context.WithoutCancel(ctx), storage.UploadDir(repo, id))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("removing upload failed; the purger will retry", "repository", repo, "upload", id, "err", err)
	}
}

func digestMismatch(want, got digest.Digest) error {
	return ocierr.New(http.StatusBadRequest, CodeDigestInvalid, "provided digest did not match uploaded content").
		WithDetail(map[string]string{"digest": want.String(), "computed": got.String()})
}

// parseContentRange reads a chunk's Content-Range: "start-end" as the
// spec writes it, and also "bytes=start-end" and "bytes start-end/total"
// that some clients send. Both ends are inclusive.
func parseContentRange(v string) (start, end int64, err error) {
	spec := strings.TrimSpace(v)
	if rest, ok := strings.CutPrefix(spec, "bytes="); ok {
		spec = rest
	} else if rest, ok := strings.CutPrefix(spec, "bytes "); ok {
		spec = rest
	}
	spec, _, _ = strings.Cut(spec, "/")
	a, b, ok := strings.Cut(spec, "-")
	if ok {
		start, err = strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	}
	if ok && err == nil {
		end, err = strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("malformed Content-Range %q; want <start>-<end>", v)
	}
	return start, end, nil
}

var (
	errBodyTooLong = errors.New("request body is longer than its declared length")
	errBodyShort   = errors.New("request body is shorter than its declared length")
)

// bodyReader reads a request body of an expected length (or -1 for
// unknown), and refuses a byte beyond it before it can reach storage.
// err keeps the body's own failure apart from the storage's.
type bodyReader struct {
	r     io.Reader
	limit int64
	n     int64
	err   error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.limit >= 0 {
		left := b.limit - b.n
		if left == 0 {
			var probe [1]byte
			_, err := io.ReadFull(b.r, probe[:])
			switch {
			case err == io.EOF:
				return 0, io.EOF
			case err == nil:
				b.err = errBodyTooLong
			default:
				b.err = err
			}
			return 0, b.err
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// copyBody copies a request body of expected length (-1: unknown) to fw
// and h, and maps a body that is too short, too long or broken to a 400.
func copyBody(fw io.Writer, h hash.Hash, body io.Reader, expected int64) (int64, error) {
	br := &bodyReader{r: body, limit: expected}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(io.MultiWriter(fw, h), br, *buf)
	if err == nil && expected >= 0 && n != expected {
		br.err, err = errBodyShort, errBodyShort
	}
	if err == nil {
		return n, nil
	}
	if br.err == nil {
		return n, err // the storage failed
	}
	switch {
	case errors.Is(br.err, errBodyTooLong):
		return n, ocierr.New(http.StatusBadRequest, CodeSizeInvalid, "request body is longer than Content-Length (or Content-Range)")
	case errors.Is(br.err, errBodyShort), errors.Is(br.err, io.ErrUnexpectedEOF):
		return n, ocierr.New(http.StatusBadRequest, CodeSizeInvalid,
			fmt.Sprintf("request body ended after %d bytes, before its declared length", n))
	}
	return n, ocierr.New(http.StatusBadRequest, CodeBlobUploadInvalid, "reading the request body: "+br.err.Error())
}

// discardBody reads the body of a request that takes none, so the
// connection can be reused, and refuses one larger than maxIgnoredBody
// instead of reading it all.
func discardBody(r *http.Request) error {
	tooBig := ocierr.New(http.StatusBadRequest, CodeBlobUploadInvalid,
		"this request takes no body; to upload a blob in one request, POST it with ?digest=<digest>")
	if r.ContentLength > maxIgnoredBody {
		return tooBig
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxIgnoredBody+1))
	if n > maxIgnoredBody {
		return tooBig
	}
	return nil
}
