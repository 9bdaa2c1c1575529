package registryd

import (
	"errors"
	"net/http"
	"path"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

// getReferrers lists the manifests of a repository whose subject is the
// given digest, as an image index. The spec forbids a 404 here (a client
// would fall back to the referrers tag schema), so an unknown repository
// or subject answers an empty list.
func (s *Server) getReferrers(w http.ResponseWriter, r *http.Request, name, ref string) error {
	ctx := r.Context()
	subject, err := parseDigest(ref)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")

	descs := []ocispec.Descriptor{}
	err = s.driver.Walk(ctx, storage.ReferrersDir(name, subject), func(fi storage.FileInfo) error {
		if fi.IsDir || path.Base(fi.Path) != "link" {
			return nil
		}
		d, err := s.readLink(ctx, fi.Path)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // corrupt, and already logged
		} else if err != nil {
			return err
		}
		// The link outlives its manifest when another program (garbage
		// collection, Distribution) deletes the revision: skip it.
		body, err := s.revisionContent(ctx, name, d)
		if errors.Is(err, storage.ErrNotFound) {
			s.log.Info("skipping referrer whose manifest is gone", "repository", name, "subject", subject, "digest", d)
			return nil
		} else if err != nil {
			return err
		}
		m, err := parseStoredManifest(body)
		if err != nil || m.Subject == nil || m.Subject.Digest != subject {
			s.log.Warn("skipping referrer link to a manifest without this subject", "repository", name, "subject", subject, "digest", d, "err", err)
			return nil
		}
		desc := ocispec.Descriptor{
			MediaType:    m.mediaType(),
			Digest:       d,
			Size:         int64(len(body)),
			ArtifactType: m.artifactType(),
			Annotations:  m.Annotations,
		}
		if filter == "" || desc.ArtifactType == filter {
			descs = append(descs, desc)
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return serveJSON(w, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: descs,
	})
}
