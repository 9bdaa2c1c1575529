package gconline

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/reponame"
)

// A promise marker is an empty object whose key says everything:
//
//	gc/promises/<gen>/<xx>/<alg>/<hex>/<repo>
//
// The repository is the tail of the key and the only part that may hold
// '/': every part before it is one segment, so a key decodes one way.

// EncodeMarker is the key of the marker of generation gen promising
// digest d in repository repo.
func EncodeMarker(gen string, d digest.Digest, repo string) (string, error) {
	if err := checkMarker(gen, d, repo); err != nil {
		return "", err
	}
	return PromiseShardDir(gen, Shard(d)) + "/" + string(d.Algorithm()) + "/" + d.Encoded() + "/" + repo, nil
}

// DecodeMarker is the inverse of EncodeMarker. It rejects any key
// EncodeMarker would not have written.
func DecodeMarker(key string) (gen string, d digest.Digest, repo string, err error) {
	rest, ok := strings.CutPrefix(key, PromisesDir+"/")
	parts := strings.SplitN(rest, "/", 5)
	if !ok || len(parts) != 5 {
		return "", "", "", fmt.Errorf("gconline: %q is not a promise marker key", key)
	}
	gen, xx, repo := parts[0], parts[1], parts[4]
	d = digest.Digest(parts[2] + ":" + parts[3])
	if err := checkMarker(gen, d, repo); err != nil {
		return "", "", "", fmt.Errorf("promise marker %q: %w", key, err)
	}
	if xx != Shard(d) {
		return "", "", "", fmt.Errorf("gconline: promise marker %q: shard %q does not match its digest", key, xx)
	}
	return gen, d, repo, nil
}

func checkMarker(gen string, d digest.Digest, repo string) error {
	if err := checkSegment("generation", gen); err != nil {
		return err
	}
	if err := CheckDigest(d); err != nil {
		return err
	}
	return CheckRepository(repo)
}

// CheckRepository accepts the repository names the daemon accepts.
func CheckRepository(repo string) error {
	if len(repo) > reponame.MaxLength || !reponame.Valid(repo) {
		return fmt.Errorf("gconline: invalid repository name %q", repo)
	}
	return nil
}
