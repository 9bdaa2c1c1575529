package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types Distribution's manifest store dispatches on besides
// image-spec's.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxManifestSize is Distribution's limit on a manifest it reads for GC
// (maxBlobGetSize): a larger one fails its Get.
const maxManifestSize = 4 << 20

// manifestInfo is what marking needs from one manifest blob.
type manifestInfo struct {
	// refs are the digests Distribution's References() lists: config and
	// layers of an image manifest, the manifests of an index. When the
	// blob does not parse (err != nil), every digest string found in its
	// bytes instead, so that nothing it might reference is collected.
	refs []digest.Digest
	// subject is the OCI subject, "" when there is none or it is invalid.
	subject digest.Digest
	// err is why Distribution's manifest store would fail to read it
	// (and its garbage-collect abort), nil when it parses.
	err error
}

// The shapes Distribution decodes each manifest type into. They use
// image-spec's Descriptor, as Distribution does, so that a blob fails to
// decode here exactly when it fails there (a field of the wrong JSON type,
// bad base64 in "data"), and unknown fields are ignored alike.
type (
	versionedDoc struct {
		specs.Versioned
		MediaType string `json:"mediaType,omitempty"`
	}
	imageDoc struct {
		specs.Versioned
		MediaType   string               `json:"mediaType,omitempty"`
		Config      ocispec.Descriptor   `json:"config"`
		Layers      []ocispec.Descriptor `json:"layers"`
		Annotations map[string]string    `json:"annotations,omitempty"`
		Subject     json.RawMessage      `json:"subject"`
	}
	// dockerImageDoc has no annotations field (schema2.Manifest).
	dockerImageDoc struct {
		specs.Versioned
		MediaType string               `json:"mediaType,omitempty"`
		Config    ocispec.Descriptor   `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Subject   json.RawMessage      `json:"subject"`
	}
	indexDoc struct {
		specs.Versioned
		MediaType   string               `json:"mediaType,omitempty"`
		Manifests   []ocispec.Descriptor `json:"manifests"`
		Annotations map[string]string    `json:"annotations,omitempty"`
		Subject     json.RawMessage      `json:"subject"`
	}
	// dockerListDoc's platform is manifestlist.PlatformSpec, which
	// shadows the descriptor's own platform field.
	dockerListDoc struct {
		specs.Versioned
		MediaType string            `json:"mediaType,omitempty"`
		Manifests []dockerListEntry `json:"manifests"`
		Subject   json.RawMessage   `json:"subject"`
	}
	dockerListEntry struct {
		ocispec.Descriptor
		Platform struct {
			Architecture string   `json:"architecture"`
			OS           string   `json:"os"`
			OSVersion    string   `json:"os.version,omitempty"`
			OSFeatures   []string `json:"os.features,omitempty"`
			Variant      string   `json:"variant,omitempty"`
			Features     []string `json:"features,omitempty"`
		} `json:"platform"`
	}
	// anyDoc has every field of the shapes above, each of a type at
	// least as strict as theirs (a list entry's platform is the Docker
	// one, a superset of image-spec's). So when a blob decodes into it,
	// it decodes into whichever shape Distribution picks: one pass
	// instead of two for nearly every manifest. When it fails, the
	// exact path decides.
	anyDoc struct {
		specs.Versioned
		MediaType   string               `json:"mediaType,omitempty"`
		Config      ocispec.Descriptor   `json:"config"`
		Layers      []ocispec.Descriptor `json:"layers"`
		Manifests   []dockerListEntry    `json:"manifests"`
		Annotations map[string]string    `json:"annotations,omitempty"`
		Subject     json.RawMessage      `json:"subject"`
	}
)

// The "subject" fields above are raw: Distribution's types have none, so
// a subject that does not decode must not fail the manifest. It is read
// apart, by subjectOf.

// parseManifest reads a manifest blob the way Distribution v3.1.2's
// manifestStore.Get does, and lists what References() would.
func parseManifest(b []byte) manifestInfo {
	var info manifestInfo
	var subject json.RawMessage
	info.refs, subject, info.err = references(b)
	if info.err != nil {
		info.refs = digestsIn(b)
		var doc struct {
			Subject json.RawMessage `json:"subject"`
		}
		if json.Unmarshal(b, &doc) == nil {
			subject = doc.Subject
		}
	}
	info.subject = subjectOf(subject)
	return info
}

// subjectOf reads the subject: regctl's own reading, as Distribution
// ignores it. One that does not decode is no subject.
func subjectOf(raw json.RawMessage) digest.Digest {
	if len(raw) == 0 {
		return ""
	}
	var s *ocispec.Descriptor
	if json.Unmarshal(raw, &s) != nil || s == nil || s.Digest.Validate() != nil {
		return ""
	}
	return s.Digest
}

// references decodes b as Distribution does, returning what References()
// lists, and the raw subject.
func references(b []byte) ([]digest.Digest, json.RawMessage, error) {
	if len(b) > maxManifestSize {
		return nil, nil, fmt.Errorf("manifest of %d bytes exceeds Distribution's %d-byte limit", len(b), maxManifestSize)
	}
	var u anyDoc
	if json.Unmarshal(b, &u) == nil && u.SchemaVersion == 2 {
		switch {
		case u.MediaType == mediaTypeDockerManifest,
			u.MediaType == ocispec.MediaTypeImageManifest,
			u.MediaType == "" && u.Manifests == nil:
			return imageRefs(u.Config, u.Layers), u.Subject, nil
		case u.MediaType == mediaTypeDockerManifestList,
			u.MediaType == ocispec.MediaTypeImageIndex,
			u.MediaType == "":
			refs := make([]digest.Digest, len(u.Manifests))
			for i, d := range u.Manifests {
				refs[i] = d.Digest
			}
			return refs, u.Subject, nil
		}
	}
	return exactReferences(b)
}

// exactReferences is references the way Distribution decodes: the
// version, then the shape its media type says.
func exactReferences(b []byte) ([]digest.Digest, json.RawMessage, error) {
	var v versionedDoc
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, nil, err
	}
	if v.SchemaVersion != 2 {
		return nil, nil, fmt.Errorf("unrecognized manifest schema version %d", v.SchemaVersion)
	}
	switch v.MediaType {
	case mediaTypeDockerManifest:
		var m dockerImageDoc
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, err
		}
		return imageRefs(m.Config, m.Layers), m.Subject, nil
	case ocispec.MediaTypeImageManifest:
		return ociImageRefs(b)
	case mediaTypeDockerManifestList:
		var m dockerListDoc
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, err
		}
		refs := make([]digest.Digest, len(m.Manifests))
		for i, d := range m.Manifests {
			refs[i] = d.Digest
		}
		return refs, m.Subject, nil
	case ocispec.MediaTypeImageIndex:
		var m indexDoc
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, err
		}
		return descDigests(m.Manifests), m.Subject, nil
	case "":
		// No media type: an index when it decodes as one with a
		// "manifests" array, else an image manifest. (An index that
		// fails to decode makes Distribution panic; it is an error here.)
		var m indexDoc
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, err
		}
		if m.Manifests != nil {
			return descDigests(m.Manifests), m.Subject, nil
		}
		return ociImageRefs(b)
	default:
		return nil, nil, fmt.Errorf("unrecognized manifest content type %s", v.MediaType)
	}
}

func ociImageRefs(b []byte) ([]digest.Digest, json.RawMessage, error) {
	var m imageDoc
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, err
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, nil, errors.New("if present, mediaType in manifest should be " + ocispec.MediaTypeImageManifest)
	}
	return imageRefs(m.Config, m.Layers), m.Subject, nil
}

func imageRefs(config ocispec.Descriptor, layers []ocispec.Descriptor) []digest.Digest {
	refs := make([]digest.Digest, 0, 1+len(layers))
	refs = append(refs, config.Digest)
	return append(refs, descDigests(layers)...)
}

func descDigests(ds []ocispec.Descriptor) []digest.Digest {
	refs := make([]digest.Digest, len(ds))
	for i, d := range ds {
		refs[i] = d.Digest
	}
	return refs
}

var digestPattern = regexp.MustCompile(`sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}`)

// digestsIn finds every digest written in b: the conservative reading of
// a manifest nobody can parse (schema 1, truncated, unknown type), which
// keeps whatever it might reference.
func digestsIn(b []byte) []digest.Digest {
	var out []digest.Digest
	seen := map[string]bool{}
	for _, m := range digestPattern.FindAll(b, -1) {
		if s := string(m); !seen[s] {
			seen[s] = true
			out = append(out, digest.Digest(s))
		}
	}
	return out
}
