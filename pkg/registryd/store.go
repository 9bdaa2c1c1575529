package registryd

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// errBadLink marks a link file that exists but does not hold a digest.
var errBadLink = errors.New("corrupt link file")

// readLink reads a link file: only a digest string. A corrupt or empty
// link (a crash of another program, a DataSync copy) is treated as absent
// and logged, never trusted.
func (s *Server) readLink(ctx context.Context, path string) (digest.Digest, error) {
	b, err := s.driver.GetContent(ctx, path)
	if err != nil {
		return "", err
	}
	str := strings.TrimSpace(string(b))
	if isCanonicalSHA256(str) {
		return digest.Digest(str), nil
	}
	d, err := digest.Parse(str)
	if err != nil {
		s.log.Warn("ignoring corrupt link file", "path", path, "size", len(b))
		return "", storage.NotFound(path)
	}
	return d, nil
}

// writeLink writes a link file as Distribution does: the digest, no newline.
func (s *Server) writeLink(ctx context.Context, path string, d digest.Digest) error {
	return s.driver.PutContent(ctx, path, []byte(d.String()))
}

// blobSize is the size of a blob in the global blob store.
func (s *Server) blobSize(ctx context.Context, d digest.Digest) (int64, error) {
	fi, err := s.driver.Stat(ctx, storage.BlobDataPath(d))
	if err != nil {
		return 0, err
	}
	return fi.Size, nil
}

// repoBlobSize is the size of a blob that belongs to repo: its layer link
// must name it and its data must exist. Checking the data, not a cache, is
// what keeps a deleted blob from ever answering "exists".
func (s *Server) repoBlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	linked, err := s.readLink(ctx, storage.LayerLinkPath(repo, d))
	if err != nil {
		return 0, err
	}
	if linked != d {
		return 0, storage.NotFound(storage.LayerLinkPath(repo, d))
	}
	return s.blobSize(ctx, d)
}

// linkBlob makes a stored blob part of repo.
func (s *Server) linkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.writeLink(ctx, storage.LayerLinkPath(repo, d), d)
}

// location builds a Location header value for a registry path such as
// "/v2/<name>/blobs/<digest>": absolute unless http.relativeurls is set.
func (s *Server) location(r *http.Request, path string) string {
	if s.opts.RelativeURLs {
		return path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		host = strings.TrimSpace(strings.Split(h, ",")[0])
	}
	u := url.URL{Scheme: scheme, Host: host}
	return u.String() + path
}
