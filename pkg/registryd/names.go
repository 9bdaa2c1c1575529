package registryd

import (
	"net/http"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/ocierr"
	"regctl/pkg/reponame"
)

// maxNameLength is Distribution's limit on a repository name.
const maxNameLength = reponame.MaxLength

// validName reports whether name fits the OCI distribution spec's grammar.
func validName(name string) bool { return reponame.Valid(name) }

// validTag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if len(name) > maxNameLength {
		return ocierr.New(http.StatusBadRequest, CodeNameInvalid, "repository name longer than 255 characters")
	}
	if !validName(name) {
		return ocierr.New(http.StatusBadRequest, CodeNameInvalid, "invalid repository name").WithDetail(map[string]string{"name": name})
	}
	return nil
}

func checkTag(tag string) error {
	if !validTag(tag) {
		return ocierr.New(http.StatusBadRequest, CodeTagInvalid, "invalid tag").WithDetail(map[string]string{"tag": tag})
	}
	return nil
}

// parseDigest accepts sha256 and sha512 digests in canonical form.
func parseDigest(s string) (digest.Digest, error) {
	if isCanonicalSHA256(s) {
		return digest.Digest(s), nil
	}
	d, err := digest.Parse(s)
	if err != nil || (d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512) {
		return "", ocierr.New(http.StatusBadRequest, CodeDigestInvalid, "invalid or unsupported digest").WithDetail(map[string]string{"digest": s})
	}
	return d, nil
}

// isCanonicalSHA256 reports whether s is "sha256:" and 64 lowercase hex
// digits: exactly the sha256 digests digest.Parse accepts, recognised
// without its regexp. Nearly every digest a registry parses is one.
func isCanonicalSHA256(s string) bool {
	const prefix = "sha256:"
	if len(s) != len(prefix)+64 || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isDigest tells a manifest reference that is a digest from a tag.
func isDigest(ref string) bool {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			return true
		}
	}
	return false
}
