// Package blobcache is the blob descriptor cache several regctl daemons
// on one storage share: what Distribution's storage.cache.blobdescriptor
// redis keeps (a blob's size and media type, per repository and
// globally), plus the bytes of small manifests, which are immutable for
// their digest. It lives in Redis so that a delete seen by one node is
// seen by all: no node answers "exists" from a cache for content another
// node, or garbage collection, deleted.
//
// The rules that keep it correct:
//   - Only read paths (blob HEAD/GET, manifest GET) answer from the cache.
//     Write paths (upload commit, cross-repository mount, the references
//     a manifest PUT names) always check the storage, so a write is never
//     skipped on the cache's word.
//   - A delete clears the entry, and leaves a tombstone for TombstoneTTL,
//     before it deletes from the storage; Set does nothing while a
//     tombstone exists, so a read that looked at the storage just before
//     the delete cannot put the entry back afterwards. When the clear
//     fails (Redis unreachable), the delete must not go ahead.
//   - Garbage collection flushes every key of the namespace while it
//     still holds the maintenance lease; the daemons do not Set while in
//     maintenance.
//   - Entries expire after EntryTTL, bounding what a deleter that knows
//     nothing of the cache (Distribution's own GC, a hand edit) can leave.
//   - When Redis fails, reads go to the storage: see Guarded.
package blobcache

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Namespace prefixes every key regctl writes into Redis. Flush removes
// exactly the keys under it.
const Namespace = "regctl:"

var (
	// EntryTTL is how long an entry lives.
	EntryTTL = time.Hour
	// TombstoneTTL is how long a cleared key refuses Sets.
	TombstoneTTL = time.Minute
)

// MaxContent is the largest manifest kept with its bytes.
const MaxContent = 256 << 10

// Descriptor is what the cache knows of a blob.
type Descriptor struct {
	Size      int64
	MediaType string
}

// Kind is what a key describes.
type Kind string

const (
	// Blob: the blob's data is in the global blob store.
	Blob Kind = "blob"
	// Layer: the blob is linked into a repository (_layers).
	Layer Kind = "layer"
	// Manifest: the digest is a manifest revision of a repository.
	Manifest Kind = "manifest"
)

// Key names an entry: a kind, a repository (empty for Blob) and a digest.
type Key struct {
	Kind   Kind
	Repo   string
	Digest digest.Digest
}

// GlobalKey is the key of a blob in the global store.
func GlobalKey(d digest.Digest) Key { return Key{Kind: Blob, Digest: d} }

// LayerKey is the key of a blob linked into repo.
func LayerKey(repo string, d digest.Digest) Key { return Key{Kind: Layer, Repo: repo, Digest: d} }

// ManifestKey is the key of manifest revision d of repo.
func ManifestKey(repo string, d digest.Digest) Key { return Key{Kind: Manifest, Repo: repo, Digest: d} }

// String is the Redis key. Repository names cannot hold ':' or '@', so
// the parts cannot run into each other.
func (k Key) String() string {
	if k.Repo == "" {
		return Namespace + string(k.Kind) + ":" + k.Digest.String()
	}
	return Namespace + "repo:" + k.Repo + ":" + string(k.Kind) + ":" + k.Digest.String()
}

func contentKey(d digest.Digest) string { return Namespace + "content:" + d.String() }

func tombstone(key string) string { return Namespace + "tomb:" + strings.TrimPrefix(key, Namespace) }

// Cache is a blob descriptor cache.
type Cache interface {
	// Get returns the entry; ok is false on a miss.
	Get(ctx context.Context, k Key) (desc Descriptor, ok bool, err error)
	// Set stores an entry unless a tombstone of k exists.
	Set(ctx context.Context, k Key, desc Descriptor) error
	// Clear removes the entries and tombstones them for TombstoneTTL.
	Clear(ctx context.Context, ks ...Key) error
	// Content returns the bytes of manifest d, if kept.
	Content(ctx context.Context, d digest.Digest) ([]byte, bool, error)
	// SetContent keeps the bytes of manifest d (at most MaxContent).
	SetContent(ctx context.Context, d digest.Digest, body []byte) error
	// Flush removes every key of the namespace and reports how many.
	Flush(ctx context.Context) (int, error)
	// Ping checks that the cache answers.
	Ping(ctx context.Context) error
	Close() error
}

// encode and decode the value of an entry: "size|mediatype".
func encode(d Descriptor) string { return strconv.FormatInt(d.Size, 10) + "|" + d.MediaType }

var errBadEntry = errors.New("malformed cache entry")

func decode(s string) (Descriptor, error) {
	size, mt, ok := strings.Cut(s, "|")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || n < 0 {
		return Descriptor{}, errBadEntry
	}
	return Descriptor{Size: n, MediaType: mt}, nil
}
