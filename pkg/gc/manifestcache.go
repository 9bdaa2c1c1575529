package gc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// The manifest cache keeps, between runs, what each manifest blob
// references, so that a run on S3 reads only the manifests pushed since
// the last run instead of all of them (a GET each: most of a dry run's
// requests). An entry is used only when the blob listing shows the blob
// with the MD5 and size the entry was made from: a blob whose content
// changed in any way is read again. Only drivers whose listings carry
// MD5s (FileLister) use it; elsewhere reading manifests is cheap.
//
// The file is text, a line per manifest, sorted:
//
//	regctl gc manifest cache v1
//	<digest> <md5> <size> <subject or -> <ref,ref,... or ->
//	sha256 <hex of every byte before this line>
//
// A file that does not check out is ignored as a whole.

// ManifestCachePath is where Run keeps the cache.
const ManifestCachePath = storage.Root + "/_regctl/gc/manifest-cache"

// manifestCacheHeader names the format. Change its version whenever
// parseManifest changes what it returns for some blob: entries made by
// the old parser must not be used.
const manifestCacheHeader = "regctl gc manifest cache v1"

// cachedManifest is what a manifest blob, with that MD5 and size,
// parsed into. Only blobs that parse are kept.
type cachedManifest struct {
	md5  string
	size int64
	info *manifestInfo
}

func encodeManifestCache(entries map[digest.Digest]cachedManifest) []byte {
	var b bytes.Buffer
	b.WriteString(manifestCacheHeader + "\n")
	for _, d := range slices.Sorted(maps.Keys(entries)) {
		e := entries[d]
		subject := "-"
		if e.info.subject != "" {
			subject = e.info.subject.String()
		}
		refs := "-"
		if len(e.info.refs) > 0 {
			s := make([]string, len(e.info.refs))
			for i, r := range e.info.refs {
				s[i] = r.String()
			}
			refs = strings.Join(s, ",")
		}
		fmt.Fprintf(&b, "%s %s %d %s %s\n", d, e.md5, e.size, subject, refs)
	}
	b.WriteString(checksumLine(b.Bytes()))
	return b.Bytes()
}

func checksumLine(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256 " + hex.EncodeToString(sum[:]) + "\n"
}

func decodeManifestCache(b []byte) (map[digest.Digest]cachedManifest, error) {
	body, trailer, ok := cutLastLine(b)
	if !ok {
		return nil, errors.New("no checksum line")
	}
	if trailer+"\n" != checksumLine(body) {
		return nil, errors.New("checksum mismatch")
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if lines[0] != manifestCacheHeader {
		return nil, fmt.Errorf("format %q, want %q", lines[0], manifestCacheHeader)
	}
	out := make(map[digest.Digest]cachedManifest, len(lines)-1)
	for n, line := range lines[1:] {
		d, e, err := decodeCacheLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+2, err)
		}
		out[d] = e
	}
	return out, nil
}

// cutLastLine splits b, which must end in a newline, before its last line.
func cutLastLine(b []byte) ([]byte, string, bool) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 {
		return nil, "", false
	}
	return b[:i+1], string(b[i+1 : len(b)-1]), true
}

func decodeCacheLine(line string) (digest.Digest, cachedManifest, error) {
	f := strings.Split(line, " ")
	if len(f) != 5 {
		return "", cachedManifest{}, fmt.Errorf("%d fields, want 5", len(f))
	}
	d, ok := parseCacheDigest(f[0])
	if !ok {
		return "", cachedManifest{}, fmt.Errorf("bad digest %q", f[0])
	}
	if len(f[1]) != 32 || strings.Trim(f[1], "0123456789abcdef") != "" {
		return "", cachedManifest{}, fmt.Errorf("bad MD5 %q", f[1])
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return "", cachedManifest{}, fmt.Errorf("bad size %q", f[2])
	}
	info := &manifestInfo{}
	if f[3] != "-" {
		if info.subject, ok = parseCacheDigest(f[3]); !ok {
			return "", cachedManifest{}, fmt.Errorf("bad subject %q", f[3])
		}
	}
	if f[4] != "-" {
		for _, s := range strings.Split(f[4], ",") {
			r, ok := parseCacheDigest(s)
			if !ok {
				return "", cachedManifest{}, fmt.Errorf("bad reference %q", s)
			}
			info.refs = append(info.refs, r)
		}
	}
	return d, cachedManifest{md5: f[1], size: size, info: info}, nil
}

func parseCacheDigest(s string) (digest.Digest, bool) {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	return makeDigest(alg, hex)
}

// cacheable tells whether every digest info names can be written as a
// cache field (a manifest that parses may still name odd digests; it is
// read again every run).
func cacheable(info *manifestInfo) bool {
	valid := func(d digest.Digest) bool { _, ok := parseCacheDigest(string(d)); return ok }
	if info.subject != "" && !valid(info.subject) {
		return false
	}
	for _, r := range info.refs {
		if !valid(r) {
			return false
		}
	}
	return true
}

// loadManifestCache reads the cache into c.cache and closes
// c.cacheReady. A missing, unreadable or damaged cache only means that
// every manifest is read.
func (c *collector) loadManifestCache(ctx context.Context) {
	defer close(c.cacheReady)
	b, err := c.drv.GetContent(ctx, ManifestCachePath)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err == nil {
		c.cache, err = decodeManifestCache(b)
	}
	if err != nil {
		c.log.Warn("gc: manifest cache not used; every manifest is read", "path", ManifestCachePath, "error", err)
		return
	}
	c.cacheRaw = b
}

// waitCache waits until the cache is loaded (at once where there is
// none).
func (c *collector) waitCache() {
	if c.cacheReady != nil {
		<-c.cacheReady
	}
}

// cached is the cache's entry for the manifest d when the listing shows
// its blob with the entry's MD5 and size.
func (c *collector) cached(d digest.Digest) (*manifestInfo, bool) {
	e, ok := c.cache[d]
	b := c.blobs[d]
	if !ok || b == nil || b.md5 == "" || e.md5 != b.md5 || e.size != b.size {
		return nil, false
	}
	return e.info, true
}

// saveManifestCache writes the cache for the manifests this run found,
// those in deleted excepted. It is written only when it changed; a
// failure to write is logged: the next run reads more, that is all.
func (c *collector) saveManifestCache(ctx context.Context, deleted map[digest.Digest]bool) {
	if c.lister == nil {
		return
	}
	entries := map[digest.Digest]cachedManifest{}
	for d, info := range c.manifests {
		b := c.blobs[d]
		if info.err != nil || deleted[d] || b == nil || b.md5 == "" || !cacheable(info) {
			continue
		}
		entries[d] = cachedManifest{md5: b.md5, size: b.size, info: info}
	}
	out := encodeManifestCache(entries)
	if bytes.Equal(out, c.cacheRaw) {
		return
	}
	if err := c.drv.PutContent(ctx, ManifestCachePath, out); err != nil {
		c.log.Warn("gc: could not save the manifest cache; the next run reads every manifest it lacks", "path", ManifestCachePath, "error", err)
	}
}
