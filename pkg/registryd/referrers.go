package registryd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

// The referrers of a subject come from two places, read on every request:
//
//   - regctl's own index, one link per referrer under the repository's
//     _regctl/referrers/<alg>/<hex>/, written when a manifest with a
//     subject is pushed through regctl;
//   - the referrers tag schema's fallback: an image index tagged
//     <alg>-<hex> (fallbackTag), which clients of registries without the
//     referrers API (CNCF Distribution) maintain themselves.
//
// The spec ("Enabling the Referrers API") asks a registry that takes over
// such a root to list the fallback's manifests that have a valid subject.
// Reading the fallback at request time, rather than importing it once,
// costs one tag read per request (a 404 on most roots), is complete on the
// first request, and stays right while Distribution keeps writing the same
// root and on every node of a cluster: there is no copy to go stale.
// Every candidate is checked against its stored manifest, so a referrer
// deleted since (through regctl, which does not edit a client's fallback
// unless asked to) drops out, and a descriptor is always built from the
// manifest itself, never trusted from the fallback's copy of it.

// Limits of the referrers tag schema: the algorithm is cut to 32
// characters and the encoded part to 64.
const (
	fallbackAlgorithmMax = 32
	fallbackEncodedMax   = 64
)

// fallbackTag is the referrers tag schema's tag of subject: its algorithm
// and encoded part, cut to their limits, joined by "-", with every
// character a tag cannot hold replaced by "-". "sha256:abc…" becomes
// "sha256-abc…".
func fallbackTag(subject digest.Digest) string {
	alg, enc := subject.Algorithm().String(), subject.Encoded()
	alg, enc = alg[:min(len(alg), fallbackAlgorithmMax)], enc[:min(len(enc), fallbackEncodedMax)]
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, alg+"-"+enc)
}

// fallbackIndex is what a subject's fallback tag points at.
type fallbackIndex struct {
	digest digest.Digest // the tagged manifest
	// foreign is set when the tag names something other than an image
	// index: a tag of that name that is not a referrers list, which is
	// neither read nor ever overwritten.
	foreign   bool
	manifests []ocispec.Descriptor
}

// readFallback reads subject's fallback tag: nil when there is none, or
// when the tag names a revision the repository no longer has.
func (s *Server) readFallback(ctx context.Context, name string, subject digest.Digest) (*fallbackIndex, error) {
	tag := fallbackTag(subject)
	d, err := s.readLink(ctx, storage.TagCurrentLinkPath(name, tag))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	body, err := s.revisionContent(ctx, name, d)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m, err := parseStoredManifest(body)
	if err != nil || m.mediaType() != ocispec.MediaTypeImageIndex {
		s.log.Debug("tag of the referrers tag schema is no image index; ignored", "repository", name, "tag", tag, "digest", d)
		return &fallbackIndex{digest: d, foreign: true}, nil
	}
	return &fallbackIndex{digest: d, manifests: m.Manifests}, nil
}

// referrers lists subject's referrers in name, from both sources, sorted
// by digest, with the fallback index as read (nil when there is none).
func (s *Server) referrers(ctx context.Context, name string, subject digest.Digest) ([]ocispec.Descriptor, *fallbackIndex, error) {
	var (
		own      []digest.Digest
		fallback *fallbackIndex
		ownErr   error
		fbErr    error
		wg       sync.WaitGroup
	)
	// The two reads are independent: on S3 each is a round trip.
	wg.Add(1)
	go func() {
		defer wg.Done()
		own, ownErr = s.indexedReferrers(ctx, name, subject)
	}()
	fallback, fbErr = s.readFallback(ctx, name, subject)
	wg.Wait()
	if err := errors.Join(ownErr, fbErr); err != nil {
		return nil, nil, err
	}

	candidates := own
	if fallback != nil {
		for _, m := range fallback.manifests {
			if m.Digest.Validate() == nil {
				candidates = append(candidates, m.Digest)
			}
		}
	}
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)

	found := make([]*ocispec.Descriptor, len(candidates))
	err := forEach(ctx, len(candidates), func(ctx context.Context, i int) error {
		desc, err := s.referrerDescriptor(ctx, name, subject, candidates[i])
		found[i] = desc
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	descs := []ocispec.Descriptor{}
	for _, d := range found {
		if d != nil {
			descs = append(descs, *d)
		}
	}
	return descs, fallback, nil
}

// indexedReferrers lists the digests regctl's own index holds for subject.
func (s *Server) indexedReferrers(ctx context.Context, name string, subject digest.Digest) ([]digest.Digest, error) {
	var ds []digest.Digest
	err := s.driver.Walk(ctx, storage.ReferrersDir(name, subject), func(fi storage.FileInfo) error {
		if fi.IsDir || path.Base(fi.Path) != "link" {
			return nil
		}
		d, err := s.readLink(ctx, fi.Path)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil // gone since the listing, or corrupt and logged
		case err != nil:
			return err
		}
		ds = append(ds, d)
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return ds, err
}

// referrerDescriptor describes manifest d of name as a referrer of
// subject, or returns nil when it is not one: its revision is gone (a
// delete, garbage collection, another program), or it names another
// subject or none.
func (s *Server) referrerDescriptor(ctx context.Context, name string, subject, d digest.Digest) (*ocispec.Descriptor, error) {
	body, err := s.revisionContent(ctx, name, d)
	if errors.Is(err, storage.ErrNotFound) {
		s.log.Debug("skipping referrer whose manifest is gone", "repository", name, "subject", subject, "digest", d)
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m, err := parseStoredManifest(body)
	if err != nil || m.Subject == nil || m.Subject.Digest != subject {
		s.log.Debug("skipping referrer candidate without this subject", "repository", name, "subject", subject, "digest", d, "err", err)
		return nil, nil
	}
	return &ocispec.Descriptor{
		MediaType:    m.mediaType(),
		Digest:       d,
		Size:         int64(len(body)),
		ArtifactType: m.artifactType(),
		Annotations:  m.Annotations,
	}, nil
}

// referrersIndex is the image index listing descs, as the referrers API
// answers and as the fallback tag stores it.
func referrersIndex(descs []ocispec.Descriptor) ocispec.Index {
	return ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: descs,
	}
}

// getReferrers lists the manifests of a repository whose subject is the
// given digest, as an image index. The spec forbids a 404 here (a client
// would fall back to the referrers tag schema), so an unknown repository
// or subject answers an empty list.
func (s *Server) getReferrers(w http.ResponseWriter, r *http.Request, name, ref string) error {
	subject, err := parseDigest(ref)
	if err != nil {
		return err
	}
	descs, _, err := s.referrers(r.Context(), name, subject)
	if err != nil {
		return err
	}
	if filter := r.URL.Query().Get("artifactType"); filter != "" {
		descs = slices.DeleteFunc(descs, func(d ocispec.Descriptor) bool { return d.ArtifactType != filter })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return serveJSON(w, ocispec.MediaTypeImageIndex, referrersIndex(descs))
}

// maxFallbackWrites bounds the rewrites of one fallback tag by one
// request; each is followed by a fresh read, and a rewrite is only needed
// when another writer changed the referrers in between.
const maxFallbackWrites = 5

// syncFallback makes subject's fallback tag list exactly its referrers
// (regctl.referrers.fallbacktags), so that CNCF Distribution on the same
// root, and its clients, see the referrers pushed through regctl.
//
// Several nodes may do this at once for one subject, and a node-local lock
// cannot order them, so it converges instead: read the referrers, write
// the index if it differs, and read again until what is read is what the
// tag holds. The last node to write the tag reads after its write, so it
// sees every referrer linked before that read, and any referrer linked
// after it is followed by its own node's read and write: the last tag
// written lists every referrer there is.
//
// A tag of that name that is not an image index is left alone: it was
// not made by the schema.
func (s *Server) syncFallback(ctx context.Context, name string, subject digest.Digest) error {
	tag := fallbackTag(subject)
	for writes := 0; ; writes++ {
		descs, cur, err := s.referrers(ctx, name, subject)
		if err != nil {
			return err
		}
		if cur != nil && cur.foreign {
			s.log.Warn("not updating the referrers fallback tag: it names a manifest that is not an image index", "repository", name, "tag", tag, "digest", cur.digest)
			return nil
		}
		body, err := json.Marshal(referrersIndex(descs))
		if err != nil {
			return err
		}
		want := digest.SHA256.FromBytes(body)
		if (len(descs) == 0 && cur == nil) || (len(descs) > 0 && cur != nil && cur.digest == want) {
			return nil
		}
		if writes == maxFallbackWrites {
			s.log.Warn("referrers fallback tag still changing after several rewrites; the next referrer push or delete of this subject updates it",
				"repository", name, "tag", tag)
			return nil
		}
		if s.beforeFallbackWrite != nil {
			s.beforeFallbackWrite()
		}
		if len(descs) == 0 {
			err = s.untag(ctx, name, tag)
		} else {
			err = s.storeRevision(ctx, name, want, body)
			if err == nil {
				err = s.tagManifest(ctx, name, tag, want)
			}
		}
		if err != nil {
			return fmt.Errorf("updating referrers fallback tag %s: %w", tag, err)
		}
	}
}

// untag deletes a tag, and nothing when it is already gone.
func (s *Server) untag(ctx context.Context, name, tag string) error {
	unlock := s.locks.lock("tag:" + name + ":" + tag)
	defer unlock()
	if err := s.driver.Delete(ctx, storage.TagDir(name, tag)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

// errRefusedWrites stops a backfill pass that the write gate refused.
var errRefusedWrites = errors.New("writes are refused (read-only or maintenance)")

// BackfillFallbackTags brings the fallback tag of every subject in
// regctl's referrers index up to date, for referrers pushed while
// fallback tags were off. Each subject is one write admitted through the
// write gate, so maintenance (garbage collection, a cutover) waits for it
// and then stops the pass; an error saying so is returned. It stops too
// when fallback tags are switched off. Subjects already right cost reads
// only, so running it again, or on every node at once, is harmless.
func (s *Server) BackfillFallbackTags(ctx context.Context) (subjects int, err error) {
	type referred struct {
		repo    string
		subject digest.Digest
	}
	var todo []referred
	err = s.driver.Walk(ctx, storage.RepositoriesRoot(), func(fi storage.FileInfo) error {
		if !fi.IsDir {
			return nil
		}
		repo, rest, found := strings.Cut(strings.TrimPrefix(fi.Path, storage.RepositoriesRoot()+"/"), "/_regctl/referrers/")
		if !found {
			if base := path.Base(fi.Path); strings.HasPrefix(base, "_") && base != "_regctl" {
				return storage.ErrSkipDir // _layers, _manifests, _uploads hide no repository
			}
			return nil
		}
		alg, hex, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex); d.Validate() == nil {
			todo = append(todo, referred{repo, d})
		}
		return storage.ErrSkipDir
	})
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil // nothing was ever pushed
	} else if err != nil {
		return 0, err
	}
	for _, r := range todo {
		if !s.fallbackTags.Load() {
			return subjects, errors.New("fallback tags were switched off")
		}
		done, refused := s.admitWrite()
		if refused != nil {
			return subjects, errRefusedWrites
		}
		err := s.syncFallback(ctx, r.repo, r.subject)
		done()
		if err != nil {
			return subjects, err
		}
		subjects++
	}
	return subjects, nil
}

// RunFallbackBackfill runs BackfillFallbackTags until one pass completes,
// trying again every retry while writes are refused or the storage fails,
// or until ctx ends. One runs at a time: a call while another runs
// returns at once.
func (s *Server) RunFallbackBackfill(ctx context.Context, retry time.Duration) {
	if !s.backfilling.CompareAndSwap(false, true) {
		return
	}
	defer s.backfilling.Store(false)
	for {
		start := time.Now()
		n, err := s.BackfillFallbackTags(ctx)
		if err == nil {
			s.log.Info("referrers fallback tags up to date", "subjects", n, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if !s.fallbackTags.Load() || ctx.Err() != nil {
			return
		}
		s.log.Warn("referrers fallback tags not yet up to date; trying again", "subjects_done", n, "retry_in", retry, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}
