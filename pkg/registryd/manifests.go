package registryd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/blobcache"
	"regctl/pkg/notify"
	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// Media types of Docker's formats, which image-spec does not define.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	// Schema 1 is never accepted, but a root written by an old
	// Distribution may still hold such manifests, and they must be served
	// with their own type.
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// maxManifestSize is the largest manifest accepted. The spec asks
// registries to take at least 4 MB, and Distribution's limit is 4 MiB.
const maxManifestSize = 4 << 20

// checkWorkers bounds the existence checks a manifest PUT runs at once:
// enough to hide S3 latency on a 100-layer image, few enough to stay polite.
const checkWorkers = 8

// manifestDoc holds the fields regctl reads from any accepted manifest
// type: an OCI image manifest or index, or Docker's schema 2 and manifest
// list, which have the same shapes.
type manifestDoc struct {
	specs.Versioned
	MediaType    string               `json:"mediaType,omitempty"`
	ArtifactType string               `json:"artifactType,omitempty"`
	Config       *ocispec.Descriptor  `json:"config,omitempty"`
	Layers       []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests    []ocispec.Descriptor `json:"manifests,omitempty"`
	Subject      *ocispec.Descriptor  `json:"subject,omitempty"`
	Annotations  map[string]string    `json:"annotations,omitempty"`
}

// isIndexType tells the manifest types that list manifests from those
// that list blobs.
func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

// acceptedType reports whether a manifest of type mt may be pushed.
func acceptedType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		mediaTypeDockerManifest, mediaTypeDockerManifestList:
		return true
	}
	return false
}

// mediaType is the type a stored manifest is served as: its own mediaType
// field, or, when it has none (optional in OCI), what its shape says.
func (m *manifestDoc) mediaType() string {
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.SchemaVersion == 1:
		return mediaTypeDockerSchema1Signed
	case m.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	}
	return ocispec.MediaTypeImageManifest
}

// artifactType is what the referrers API reports for this manifest: its
// artifactType, else (image manifests only) its config's media type.
func (m *manifestDoc) artifactType() string {
	if m.ArtifactType != "" || isIndexType(m.mediaType()) || m.Config == nil {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// parseStoredManifest reads the fields of a stored manifest. Stored bytes
// were validated on push, but a root shared with other programs may hold
// anything, so failure is an error, not a panic.
func parseStoredManifest(b []byte) (*manifestDoc, error) {
	var m manifestDoc
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("stored manifest is not JSON: %w", err)
	}
	return &m, nil
}

// references are what the manifest points at, as notification events
// list them: config, layers, index entries, subject.
func (m *manifestDoc) references() []ocispec.Descriptor {
	var refs []ocispec.Descriptor
	if m.Config != nil {
		refs = append(refs, *m.Config)
	}
	refs = append(refs, m.Layers...)
	refs = append(refs, m.Manifests...)
	if m.Subject != nil {
		refs = append(refs, *m.Subject)
	}
	return refs
}

// mediaTypeMemo maps the bytes of stored manifests to the media type
// they are served as and their references (for pull events), so that a
// manifest pulled again and again is parsed once rather than on every
// GET (parsing was the largest cost of a GET after the file reads). It
// is keyed by the content itself, which is immutable, so an entry can
// never be stale; and it is only consulted with bytes just read from
// storage, so it never tells whether a manifest exists: a deleted
// manifest is not found before the memo is asked. Bounded; when full it
// starts over.
type mediaTypeMemo struct {
	mu    sync.Mutex
	m     map[string]memoEntry
	bytes int
}

type memoEntry struct {
	mt string
	// refs is shared by every caller: read it, never change it.
	refs []ocispec.Descriptor
}

// cost is roughly the memory an entry for body holds.
func (e memoEntry) cost(body []byte) int {
	n := len(body)
	for _, r := range e.refs {
		n += 96 + len(r.MediaType) + len(r.Digest) + len(r.ArtifactType)
		for k, v := range r.Annotations {
			n += len(k) + len(v)
		}
	}
	return n
}

const (
	memoMaxBody  = 64 << 10 // larger manifests are parsed every time
	memoMaxBytes = 16 << 20 // the memo's budget for keys and references
)

// of returns the media type body is served as: its mediaType, or what its
// shape says, or, for bytes that do not parse, the image manifest type and
// the error (not remembered, so each GET logs it).
func (c *mediaTypeMemo) of(body []byte) (string, error) {
	e, err := c.entry(body)
	return e.mt, err
}

// references returns the references of the manifest body, nil when it
// does not parse. The slice is shared: never change it.
func (c *mediaTypeMemo) references(body []byte) []ocispec.Descriptor {
	e, _ := c.entry(body)
	return e.refs
}

func (c *mediaTypeMemo) entry(body []byte) (memoEntry, error) {
	if len(body) <= memoMaxBody {
		c.mu.Lock()
		e, ok := c.m[string(body)]
		c.mu.Unlock()
		if ok {
			return e, nil
		}
	}
	m, err := parseStoredManifest(body)
	if err != nil {
		return memoEntry{mt: ocispec.MediaTypeImageManifest}, err
	}
	e := memoEntry{mt: m.mediaType(), refs: m.references()}
	if len(body) <= memoMaxBody {
		cost := e.cost(body)
		c.mu.Lock()
		if c.m == nil || c.bytes+cost > memoMaxBytes {
			c.m, c.bytes = map[string]memoEntry{}, 0
		}
		if _, ok := c.m[string(body)]; !ok {
			c.m[string(body)] = e
			c.bytes += cost
		}
		c.mu.Unlock()
	}
	return e, nil
}

func manifestInvalid(msg string, detail any) error {
	e := ocierr.New(http.StatusBadRequest, CodeManifestInvalid, msg)
	if detail != nil {
		e = e.WithDetail(detail)
	}
	return e
}

// validateManifest checks a pushed manifest against the Content-Type it
// came with and returns its fields.
func validateManifest(contentType string, body []byte) (*manifestDoc, error) {
	ct, _, err := mime.ParseMediaType(contentType)
	if err != nil || !acceptedType(ct) {
		return nil, manifestInvalid("unsupported manifest Content-Type; expected one of "+
			strings.Join([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
				mediaTypeDockerManifest, mediaTypeDockerManifestList}, ", "),
			map[string]string{"contentType": contentType})
	}
	var m manifestDoc
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, manifestInvalid("manifest is not valid JSON: "+err.Error(), nil)
	}
	if m.SchemaVersion != 2 {
		return nil, manifestInvalid("manifest schemaVersion must be 2", map[string]int{"schemaVersion": m.SchemaVersion})
	}
	switch {
	case m.MediaType != "" && m.MediaType != ct:
		return nil, manifestInvalid("manifest mediaType does not match the Content-Type header",
			map[string]string{"mediaType": m.MediaType, "contentType": ct})
	case m.MediaType == "" && (ct == mediaTypeDockerManifest || ct == mediaTypeDockerManifestList):
		// Docker's formats require the field, and without it a pull would
		// be served as OCI.
		return nil, manifestInvalid("Docker manifests must carry their mediaType", map[string]string{"contentType": ct})
	case m.MediaType == "" && m.mediaType() != ct:
		// A pull infers the type from the shape; refuse what would come
		// back as another type than it was pushed as.
		return nil, manifestInvalid("manifest has no mediaType and its fields do not fit "+ct, nil)
	}
	// Fields foreign to a type are ignored, as image-spec asks of unknown
	// properties: only what the type defines is checked and used.
	var descs []ocispec.Descriptor
	if isIndexType(ct) {
		if m.Manifests == nil {
			return nil, manifestInvalid("index has no manifests field", nil)
		}
		m.Config, m.Layers = nil, nil
		descs = m.Manifests
	} else {
		if m.Config == nil {
			return nil, manifestInvalid("image manifest has no config", nil)
		}
		m.Manifests = nil
		descs = append([]ocispec.Descriptor{*m.Config}, m.Layers...)
	}
	if ct == mediaTypeDockerManifest || ct == mediaTypeDockerManifestList {
		m.Subject, m.ArtifactType = nil, "" // Docker's formats have neither
	}
	if m.Subject != nil {
		descs = append(descs, *m.Subject)
	}
	for _, d := range descs {
		if err := d.Digest.Validate(); err != nil || d.Size < 0 {
			return nil, manifestInvalid("manifest holds an invalid descriptor",
				map[string]any{"digest": d.Digest, "size": d.Size, "mediaType": d.MediaType})
		}
	}
	return &m, nil
}

// isForeignLayer tells layers that clients fetch from their urls, not from
// the registry, so they need not have been pushed.
func isForeignLayer(d ocispec.Descriptor) bool {
	if len(d.URLs) == 0 {
		return false
	}
	return d.MediaType == mediaTypeDockerForeignLayer ||
		strings.Contains(d.MediaType, ".nondistributable.")
}

// manifestExists checks that d is a manifest revision of repo with data.
func (s *Server) manifestExists(ctx context.Context, repo string, d digest.Digest) error {
	linked, err := s.readLink(ctx, storage.ManifestRevisionLinkPath(repo, d))
	if err != nil {
		return err
	}
	if linked != d {
		return storage.NotFound(storage.ManifestRevisionLinkPath(repo, d))
	}
	_, err = s.blobSize(ctx, d)
	return err
}

// revisionContent reads manifest revision d of repo.
func (s *Server) revisionContent(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	linked, err := s.readLink(ctx, storage.ManifestRevisionLinkPath(repo, d))
	if err != nil {
		return nil, err
	}
	if linked != d {
		return nil, storage.NotFound(storage.ManifestRevisionLinkPath(repo, d))
	}
	return s.driver.GetContent(ctx, storage.BlobDataPath(d))
}

// findMissing runs exists on every digest, a few at a time, and returns
// those it reports not found, in input order. Any other failure aborts.
func findMissing(ctx context.Context, ds []digest.Digest, exists func(context.Context, digest.Digest) error) ([]digest.Digest, error) {
	found := make([]bool, len(ds))
	err := forEach(ctx, len(ds), func(ctx context.Context, i int) error {
		err := exists(ctx, ds[i])
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		found[i] = err == nil
		return err
	})
	if err != nil {
		return nil, err
	}
	var missing []digest.Digest
	for i, ok := range found {
		if !ok {
			missing = append(missing, ds[i])
		}
	}
	return missing, nil
}

// forEach runs fn for 0..n-1, checkWorkers at a time, and returns the
// first error; the others stop early through ctx.
func forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(checkWorkers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// checkReferences makes sure everything a manifest points at, but its
// subject, is in the repository: blobs for image manifests, manifests for
// indexes. The subject may be pushed later (spec: Push).
func (s *Server) checkReferences(ctx context.Context, repo string, m *manifestDoc) error {
	var ds []digest.Digest
	seen := map[digest.Digest]bool{}
	add := func(d digest.Digest) {
		if !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	exists := func(ctx context.Context, d digest.Digest) error {
		_, err := s.repoBlobSize(ctx, repo, d)
		return err
	}
	what := "blob"
	if isIndexType(m.mediaType()) {
		what = "manifest"
		exists = func(ctx context.Context, d digest.Digest) error { return s.manifestExists(ctx, repo, d) }
		for _, c := range m.Manifests {
			add(c.Digest)
		}
	} else {
		add(m.Config.Digest)
		for _, l := range m.Layers {
			if !isForeignLayer(l) {
				add(l.Digest)
			}
		}
	}
	missing, err := findMissing(ctx, ds, exists)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	detail := map[string]any{"digest": missing[0]}
	if len(missing) > 1 {
		detail["missing"] = missing
	}
	return ocierr.New(http.StatusBadRequest, CodeManifestBlobUnknown,
		fmt.Sprintf("manifest references %d %s(s) unknown to this repository; push them first", len(missing), what)).WithDetail(detail)
}

// putManifest stores a pushed manifest by tag or by digest.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	ctx := r.Context()
	var want digest.Digest
	tag := ""
	if isDigest(ref) {
		d, err := parseDigest(ref)
		if err != nil {
			return err
		}
		want = d
	} else {
		if err := checkTag(ref); err != nil {
			return err
		}
		tag = ref
	}

	tooLarge := ocierr.New(http.StatusRequestEntityTooLarge, CodeSizeInvalid,
		fmt.Sprintf("manifest larger than the %d bytes this registry accepts", maxManifestSize))
	if r.ContentLength > maxManifestSize {
		return tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return fmt.Errorf("reading manifest body: %w", err)
	}
	if len(body) > maxManifestSize {
		return tooLarge
	}

	// The stored bytes are exactly the pushed ones, so their digest is
	// the manifest's, in the algorithm the client asked for.
	d := digest.SHA256.FromBytes(body)
	if want != "" {
		d = want.Algorithm().FromBytes(body)
		if d != want {
			return ocierr.New(http.StatusBadRequest, CodeDigestInvalid, "manifest digest does not match the reference").
				WithDetail(map[string]string{"reference": want.String(), "computed": d.String()})
		}
	}

	m, err := validateManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	if err := s.checkReferences(ctx, name, m); err != nil {
		return err
	}
	// The point of commitment: the references were found by a node
	// whose heartbeat must still be fresh when it stores.
	if err := s.checkFence(); err != nil {
		return err
	}

	if err := s.storeRevision(ctx, name, d, body); err != nil {
		return err
	}
	if m.Subject != nil {
		if err := s.writeLink(ctx, storage.ReferrerLinkPath(name, m.Subject.Digest, d), d); err != nil {
			return fmt.Errorf("recording referrer %s of %s: %w", d, m.Subject.Digest, err)
		}
	}
	if tag != "" {
		if err := s.tagManifest(ctx, name, tag, d); err != nil {
			return err
		}
	}
	if m.Subject != nil && s.fallbackTags.Load() {
		// The push is stored; a failure here answers 500 so that the
		// client pushes again, which is harmless and updates the tag.
		if err := s.syncFallback(ctx, name, m.Subject.Digest); err != nil {
			return err
		}
	}

	h := w.Header()
	h.Set("Location", s.location(r, "/v2/"+name+"/manifests/"+d.String()))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest.String())
	}
	w.WriteHeader(http.StatusCreated)
	if s.notifying() {
		s.emit(r, notify.ActionPush, s.manifestTarget(r, name, d, m.mediaType(), len(body), tag, m.references()))
	}
	return nil
}

// storeRevision stores manifest bytes and makes them revision d of name.
func (s *Server) storeRevision(ctx context.Context, name string, d digest.Digest, body []byte) error {
	if _, err := s.driver.Stat(ctx, storage.BlobDataPath(d)); errors.Is(err, storage.ErrNotFound) {
		if err := s.driver.PutContent(ctx, storage.BlobDataPath(d), body); err != nil {
			return fmt.Errorf("storing manifest %s: %w", d, err)
		}
	} else if err != nil {
		return err
	}
	if err := s.writeLink(ctx, storage.ManifestRevisionLinkPath(name, d), d); err != nil {
		return fmt.Errorf("linking manifest %s: %w", d, err)
	}
	return nil
}

// tagManifest points tag at d. The index entry is written first so that
// current/link never names a revision the tag's history lacks, and the
// lock keeps concurrent pushes of one tag from interleaving the two.
func (s *Server) tagManifest(ctx context.Context, name, tag string, d digest.Digest) error {
	unlock := s.locks.lock("tag:" + name + ":" + tag)
	defer unlock()
	if err := s.writeLink(ctx, storage.TagIndexEntryLinkPath(name, tag, d), d); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", d, tag, err)
	}
	if err := s.writeLink(ctx, storage.TagCurrentLinkPath(name, tag), d); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", d, tag, err)
	}
	return nil
}

// manifestUnknown is the 404 for a reference that resolves to nothing:
// NAME_UNKNOWN when the repository itself does not exist.
func (s *Server) manifestUnknown(ctx context.Context, name, ref string) error {
	if _, err := s.driver.Stat(ctx, storage.ManifestsDir(name)); errors.Is(err, storage.ErrNotFound) {
		return ocierr.New(http.StatusNotFound, CodeNameUnknown, "repository name not known to registry").
			WithDetail(map[string]string{"name": name})
	} else if err != nil {
		return err
	}
	return ocierr.New(http.StatusNotFound, CodeManifestUnknown, "manifest unknown to registry").
		WithDetail(map[string]string{"name": name, "reference": ref})
}

// resolveReference turns a tag or digest into the digest of a manifest
// revision of the repository.
func (s *Server) resolveReference(ctx context.Context, name, ref string) (digest.Digest, error) {
	var d digest.Digest
	if isDigest(ref) {
		var err error
		if d, err = parseDigest(ref); err != nil {
			return "", err
		}
	} else {
		if err := checkTag(ref); err != nil {
			return "", err
		}
		cur, err := s.readLink(ctx, storage.TagCurrentLinkPath(name, ref))
		if errors.Is(err, storage.ErrNotFound) {
			return "", s.manifestUnknown(ctx, name, ref)
		} else if err != nil {
			return "", err
		}
		d = cur
	}
	// A tag may outlive its revision when another program deleted it.
	linked, err := s.readLink(ctx, storage.ManifestRevisionLinkPath(name, d))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && linked != d) {
		return "", s.manifestUnknown(ctx, name, ref)
	}
	return d, err
}

// getManifest serves GET and HEAD of a manifest.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	ctx := r.Context()
	d, body, err := s.manifestForGet(ctx, name, ref)
	if err != nil {
		return err
	}
	mt, err := s.mediaTypes.of(body)
	if err != nil {
		s.log.Warn("serving unparsable manifest", "repository", name, "digest", d, "err", err)
	}
	if !accepts(r.Header.Values("Accept"), mt) {
		return ocierr.New(http.StatusNotFound, CodeManifestUnknown,
			fmt.Sprintf("the manifest exists as %s, which the client's Accept header does not list", mt)).
			WithDetail(map[string]string{"mediaType": mt, "digest": d.String()})
	}

	h := w.Header()
	etag := `"` + d.String() + `"`
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", etag)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
		if s.notifying() {
			tag := ""
			if !isDigest(ref) {
				tag = ref
			}
			// The references, as in push events, from the memo: a
			// body that does not parse goes without them.
			s.emit(r, notify.ActionPull, s.manifestTarget(r, name, d, mt, len(body), tag, s.mediaTypes.references(body)))
		}
	}
	return nil
}

// accepts applies a request's Accept headers to a manifest type. No list,
// or a wildcard in it, accepts anything: only a client that names the
// types it understands is refused others (docker always names them).
func accepts(headers []string, mt string) bool {
	listed := false
	for _, h := range headers {
		for part := range strings.SplitSeq(h, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			var t string
			if !strings.Contains(part, ";") {
				// No parameters, so no q: the type is all there is, and
				// mime.ParseMediaType (and its map) would only lower-case
				// it, valid or not.
				t = strings.ToLower(part)
			} else {
				var params map[string]string
				var err error
				t, params, err = mime.ParseMediaType(part)
				if err != nil {
					t, _, _ = strings.Cut(part, ";")
					t = strings.ToLower(strings.TrimSpace(t))
				}
				if q, ok := params["q"]; ok {
					if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
						continue // explicitly refused
					}
				}
			}
			if strings.Contains(t, "*") || t == mt {
				return true
			}
			listed = true
		}
	}
	return !listed
}

// etagMatches applies If-None-Match.
func etagMatches(headers []string, etag string) bool {
	for _, h := range headers {
		for _, v := range strings.Split(h, ",") {
			v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
			if v == "*" || v == etag {
				return true
			}
		}
	}
	return false
}

// deleteManifest deletes a tag, or a manifest revision with every tag
// pointing at it. Blob data stays for garbage collection to sweep.
func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	if !s.opts.DeleteEnabled {
		return ocierr.New(http.StatusMethodNotAllowed, CodeUnsupported,
			"deletes are disabled on this registry (storage.delete.enabled)")
	}
	ctx := r.Context()
	target := notify.Target{Repository: name}
	if isDigest(ref) {
		if err := s.deleteRevision(ctx, name, ref); err != nil {
			return err
		}
		target.Digest = ref
	} else {
		if err := checkTag(ref); err != nil {
			return err
		}
		if err := s.deleteTag(ctx, name, ref); err != nil {
			return err
		}
		target.Tag = ref
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	s.emit(r, notify.ActionDelete, target)
	return nil
}

func (s *Server) deleteTag(ctx context.Context, name, tag string) error {
	unlock := s.locks.lock("tag:" + name + ":" + tag)
	defer unlock()
	if _, err := s.readLink(ctx, storage.TagCurrentLinkPath(name, tag)); errors.Is(err, storage.ErrNotFound) {
		return s.manifestUnknown(ctx, name, tag)
	} else if err != nil {
		return err
	}
	if err := s.driver.Delete(ctx, storage.TagDir(name, tag)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("deleting tag %s: %w", tag, err)
	}
	return nil
}

func (s *Server) deleteRevision(ctx context.Context, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	linked, err := s.readLink(ctx, storage.ManifestRevisionLinkPath(name, d))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && linked != d) {
		return s.manifestUnknown(ctx, name, ref)
	} else if err != nil {
		return err
	}
	// Read the subject before the revision goes, to drop its referrer link.
	var subject digest.Digest
	if body, err := s.driver.GetContent(ctx, storage.BlobDataPath(d)); err == nil {
		if m, err := parseStoredManifest(body); err == nil && m.Subject != nil {
			subject = m.Subject.Digest
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}

	if err := s.invalidate(ctx, blobcache.ManifestKey(name, d)); err != nil {
		return err
	}
	if err := s.driver.Delete(ctx, storage.ManifestRevisionDir(name, d)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("deleting manifest %s: %w", d, err)
	}
	if err := s.untagRevision(ctx, name, d); err != nil {
		return err
	}
	if subject != "" && subject.Validate() == nil {
		err := s.driver.Delete(ctx, path.Dir(storage.ReferrerLinkPath(name, subject, d)))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("deleting referrer link of %s: %w", d, err)
		}
		if s.fallbackTags.Load() {
			// The manifest is gone already, so the delete succeeded: a
			// failure here is logged, not answered. The fallback then
			// lists a manifest that no longer exists, which clients
			// skip, until the next push or delete of this subject.
			if err := s.syncFallback(ctx, name, subject); err != nil {
				s.log.Error("deleted a referrer but could not update its fallback tag", "repository", name, "subject", subject, "digest", d, "err", err)
			}
		}
	}
	return nil
}

// untagRevision removes every tag whose current link names d, and d from
// the history of the others, as Distribution's garbage collection does.
// Each tag is handled under its lock so a concurrent re-push wins cleanly.
func (s *Server) untagRevision(ctx context.Context, name string, d digest.Digest) error {
	tags, err := s.listTags(ctx, name)
	if err != nil {
		return err
	}
	for _, tag := range tags {
		err := func() error {
			unlock := s.locks.lock("tag:" + name + ":" + tag)
			defer unlock()
			cur, err := s.readLink(ctx, storage.TagCurrentLinkPath(name, tag))
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			target := path.Dir(storage.TagIndexEntryLinkPath(name, tag, d))
			if err == nil && cur == d {
				target = storage.TagDir(name, tag)
			}
			if err := s.driver.Delete(ctx, target); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("untagging %s from %s: %w", tag, d, err)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}
