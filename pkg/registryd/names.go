package registryd

import (
	"net/http"
	"regexp"

	"github.com/opencontainers/go-digest"
)

// The grammar of the OCI distribution spec. Checking names against it is
// also what keeps "..", a leading "/" or "%2e" from reaching the storage.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// maxNameLength is Distribution's limit on a repository name.
const maxNameLength = 255

func checkName(name string) error {
	if len(name) > maxNameLength {
		return newError(http.StatusBadRequest, CodeNameInvalid, "repository name longer than 255 characters")
	}
	if !nameRE.MatchString(name) {
		return newError(http.StatusBadRequest, CodeNameInvalid, "invalid repository name").withDetail(map[string]string{"name": name})
	}
	return nil
}

func checkTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return newError(http.StatusBadRequest, CodeTagInvalid, "invalid tag").withDetail(map[string]string{"tag": tag})
	}
	return nil
}

// parseDigest accepts sha256 and sha512 digests in canonical form.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil || (d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512) {
		return "", newError(http.StatusBadRequest, CodeDigestInvalid, "invalid or unsupported digest").withDetail(map[string]string{"digest": s})
	}
	return d, nil
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
