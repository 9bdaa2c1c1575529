package registryd

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/blobcache"
	"regctl/pkg/notify"
	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// blobCacheControl lets clients and proxies keep a blob for a year: its
// URL names its content, so it never changes.
const blobCacheControl = "max-age=31536000"

// getBlob answers GET and HEAD /v2/<name>/blobs/<digest>.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	ctx := r.Context()
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	size, err := s.cachedRepoBlobSize(ctx, name, d)
	if err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	}
	etag := `"` + d.String() + `"`
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	// The content behind an ETag never changes, so a match is always fresh.
	if etagListMatches(r.Header.Get("If-None-Match"), etag) {
		h.Set("ETag", etag)
		h.Set("Cache-Control", blobCacheControl)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if r.Method == http.MethodHead {
		// Range is only defined for GET; HEAD describes the whole blob
		// and never redirects, so clients can check existence cheaply.
		setBlobHeaders(h, d)
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}

	// Ranges are checked first, for both paths: an unsatisfiable one
	// always answers with the OCI error envelope, never a redirect to a
	// backend that would answer it differently, nor the plain text
	// http.ServeContent would write.
	ranges, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return ocierr.New(http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid, err.Error())
	}

	dataPath := storage.BlobDataPath(d)
	if rd, ok := storage.As[storage.Redirector](s.driver); ok && !s.opts.RedirectDisabled {
		u, err := rd.RedirectURL(r, dataPath)
		if err == nil && u != "" {
			h.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			s.emitBlobPull(r, name, d, size)
			return nil
		}
		// A backend that cannot sign a URL right now still has the bytes.
		s.log.Warn("blob redirect failed; serving the blob directly", "digest", d, "err", err)
	}

	if ir := r.Header.Get("If-Range"); ir != "" && ir != etag {
		ranges = nil // the client's copy is another blob: send it all
	}

	if op, ok := storage.As[storage.Opener](s.driver); ok {
		f, _, err := op.Open(ctx, dataPath)
		if err != nil {
			return notFound(err, http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
		}
		defer f.Close()
		if ranges == nil {
			r.Header.Del("Range")
		}
		setBlobHeaders(h, d)
		// ServeContent handles ranges (multipart too) and lets the
		// runtime use sendfile for an *os.File. A zero modtime keeps
		// Last-Modified out: the ETag already says everything.
		http.ServeContent(w, r, "", time.Time{}, f)
		s.emitBlobPull(r, name, d, size)
		return nil
	}
	if err := s.streamBlob(w, r, d, size, ranges); err != nil {
		return err
	}
	s.emitBlobPull(r, name, d, size)
	return nil
}

// streamBlob serves a blob through driver.Reader: the whole blob, or one
// range. Several ranges are answered with the whole blob, which RFC 9110
// allows and which keeps this path simple.
func (s *Server) streamBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, size int64, ranges []byteRange) error {
	dataPath := storage.BlobDataPath(d)
	start, length, status := int64(0), size, http.StatusOK
	if len(ranges) == 1 {
		start, length, status = ranges[0].start, ranges[0].length, http.StatusPartialContent
	}
	h := w.Header()
	rc, err := s.driver.Reader(r.Context(), dataPath, start)
	if err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	}
	defer rc.Close()
	setBlobHeaders(h, d)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if status == http.StatusPartialContent {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	w.WriteHeader(status)
	// Large reads: a backend stream (S3) costs per call, and 32 KiB
	// pieces made proxied pulls CPU-bound.
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// struct{ io.Writer } hides the ResponseWriter's ReadFrom, which
	// would ignore buf and copy in small pieces.
	if n, err := io.CopyBuffer(struct{ io.Writer }{w}, io.LimitReader(rc, length), *buf); err != nil || n != length {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		// Headers are gone: all that is left is to cut the response
		// short and say why in the log.
		s.log.Warn("blob download ended early", "path", dataPath, "sent", n, "of", length, "err", err)
	}
	return nil
}

// setBlobHeaders describes a blob in a response. They go only on answers
// that carry or describe the blob: a year's Cache-Control on an error
// would let a proxy keep the error.
func setBlobHeaders(h http.Header, d digest.Digest) {
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", blobCacheControl)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
}

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>: it unlinks the blob
// from the repository only; the data stays for garbage collection, since
// other repositories may link it too.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	if !s.opts.DeleteEnabled {
		return ocierr.New(http.StatusMethodNotAllowed, CodeUnsupported, "deletes are disabled (storage.delete.enabled is false)")
	}
	ctx := r.Context()
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	link := storage.LayerLinkPath(name, d)
	if _, err := s.readLink(ctx, link); err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	}
	if err := s.invalidate(ctx, blobcache.LayerKey(name, d)); err != nil {
		return err
	}
	// Remove the link's folder, not just the file, so no empty
	// _layers/<alg>/<hex>/ is left behind; Distribution reads either
	// state as "not linked".
	if err := s.driver.Delete(ctx, path.Dir(link)); err != nil {
		return notFound(err, http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	}
	s.log.Info("blob unlinked", "repository", name, "digest", d)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	s.emit(r, notify.ActionDelete, notify.Target{Repository: name, Digest: d.String()})
	return nil
}

// blobCreated answers 201 for a blob now in the repository.
func (s *Server) blobCreated(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", s.location(r, "/v2/"+name+"/blobs/"+d.String()))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// byteRange is one satisfiable range of a Range header.
type byteRange struct{ start, length int64 }

// parseRange reads a "bytes=" Range header against a blob of size bytes.
// No header gives no ranges; a malformed header or one with no
// satisfiable range is an error (answered 416, as http.ServeContent
// does). Unsatisfiable ranges next to satisfiable ones are dropped.
func parseRange(header string, size int64) ([]byteRange, error) {
	if header == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return nil, errors.New("only byte ranges are supported")
	}
	var out []byteRange
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("malformed range %q", part)
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		if first == "" {
			// "-n": the last n bytes.
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("malformed range %q", part)
			}
			if n == 0 || size == 0 {
				continue
			}
			n = min(n, size)
			out = append(out, byteRange{start: size - n, length: n})
			continue
		}
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil || start < 0 {
			return nil, fmt.Errorf("malformed range %q", part)
		}
		end := size - 1
		if last != "" {
			end, err = strconv.ParseInt(last, 10, 64)
			if err != nil || end < start {
				return nil, fmt.Errorf("malformed range %q", part)
			}
			end = min(end, size-1)
		}
		if start >= size {
			continue
		}
		out = append(out, byteRange{start: start, length: end - start + 1})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("range %q is not satisfiable for a blob of %d bytes", header, size)
	}
	return out, nil
}

// etagListMatches reports whether an If-None-Match value names etag.
func etagListMatches(list, etag string) bool {
	for v := range strings.SplitSeq(list, ",") {
		v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "W/"))
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}

// copyBufs holds 1 MiB buffers for proxied blob downloads.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// emitBlobPull sends the pull event of a blob GET, as Distribution does
// for every GET it serves or redirects.
func (s *Server) emitBlobPull(r *http.Request, name string, d digest.Digest, size int64) {
	if s.notifying() {
		s.emit(r, notify.ActionPull, s.blobTarget(r, name, d, size))
	}
}
