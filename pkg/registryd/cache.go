package registryd

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/blobcache"
	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// The shared blob descriptor cache (storage.cache.blobdescriptor: redis)
// answers read paths only: blob HEAD/GET and manifest GET. Write paths
// keep asking the storage (see pkg/blobcache for the rules).

// codeUnavailable is Distribution's error code for a service that cannot
// answer now.
const codeUnavailable = "UNAVAILABLE"

// cacheWritable reports whether reads may fill the cache: not during
// maintenance, when garbage collection deletes and then flushes it.
func (s *Server) cacheWritable() bool {
	if s.opts.Cache == nil {
		return false
	}
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return !s.writes.maintenance
}

// cachedRepoBlobSize is repoBlobSize through the cache.
func (s *Server) cachedRepoBlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	c := s.opts.Cache
	if c == nil {
		return s.repoBlobSize(ctx, repo, d)
	}
	k := blobcache.LayerKey(repo, d)
	if desc, ok, _ := c.Get(ctx, k); ok {
		return desc.Size, nil
	}
	size, err := s.repoBlobSize(ctx, repo, d)
	if err == nil && s.cacheWritable() {
		c.Set(ctx, k, blobcache.Descriptor{Size: size})
	}
	return size, err
}

// manifestForGet resolves ref and reads the manifest's bytes: through the
// cache when there is one (a tag is always read from the storage; the
// revision and its bytes come from the cache).
func (s *Server) manifestForGet(ctx context.Context, name, ref string) (digest.Digest, []byte, error) {
	c := s.opts.Cache
	var d digest.Digest
	if c != nil {
		if isDigest(ref) {
			d, _ = parseDigest(ref)
		} else if checkTag(ref) == nil {
			cur, err := s.readLink(ctx, storage.TagCurrentLinkPath(name, ref))
			if errors.Is(err, storage.ErrNotFound) {
				return "", nil, s.manifestUnknown(ctx, name, ref)
			} else if err != nil {
				return "", nil, err
			}
			d = cur
		}
		if d != "" {
			if _, ok, _ := c.Get(ctx, blobcache.ManifestKey(name, d)); ok {
				if body, ok, _ := c.Content(ctx, d); ok {
					return d, body, nil
				}
			}
			ref = d.String() // the tag has been read: resolve the revision
		}
	}
	d, err := s.resolveReference(ctx, name, ref)
	if err != nil {
		return "", nil, err
	}
	body, err := s.driver.GetContent(ctx, storage.BlobDataPath(d))
	if errors.Is(err, storage.ErrNotFound) {
		// Linked but its data is gone (a garbage collection raced a push).
		s.log.Warn("manifest revision has no data", "repository", name, "digest", d)
		return "", nil, s.manifestUnknown(ctx, name, ref)
	} else if err != nil {
		return "", nil, err
	}
	if s.cacheWritable() {
		mt, _ := s.mediaTypes.of(body)
		c.SetContent(ctx, d, body)
		c.Set(ctx, blobcache.ManifestKey(name, d), blobcache.Descriptor{Size: int64(len(body)), MediaType: mt})
	}
	return d, body, nil
}

// invalidate clears cache entries before what they describe is deleted.
// When the cache cannot be cleared the delete must not happen: other
// nodes would keep answering "exists" for it.
func (s *Server) invalidate(ctx context.Context, ks ...blobcache.Key) error {
	if s.opts.Cache == nil {
		return nil
	}
	if err := s.opts.Cache.Clear(ctx, ks...); err != nil {
		return ocierr.New(http.StatusServiceUnavailable, codeUnavailable,
			fmt.Sprintf("the shared blob descriptor cache (redis) cannot be updated, so nothing was deleted; try again: %v", err))
	}
	return nil
}
