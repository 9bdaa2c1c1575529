package gconline

import (
	"encoding/hex"
	"math/rand"
	"strings"

	"github.com/opencontainers/go-digest"
)

// randDigest is a random sha256 or sha512 digest (one in four sha512).
func randDigest(r *rand.Rand) digest.Digest {
	n, alg := 32, "sha256"
	if r.Intn(4) == 0 {
		n, alg = 64, "sha512"
	}
	b := make([]byte, n)
	r.Read(b)
	return digest.Digest(alg + ":" + hex.EncodeToString(b))
}

// randDigestIn is a random digest of shard xx.
func randDigestIn(r *rand.Rand, xx string) digest.Digest {
	d := randDigest(r)
	alg, h, _ := strings.Cut(string(d), ":")
	return digest.Digest(alg + ":" + xx + h[2:])
}

// randRepo is a random valid repository name of one to four components,
// using every separator of the grammar.
func randRepo(r *rand.Rand) string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	seps := []string{".", "_", "__", "-", "---"}
	var comps []string
	for range 1 + r.Intn(4) {
		var c strings.Builder
		for j := range 1 + r.Intn(3) {
			if j > 0 {
				c.WriteString(seps[r.Intn(len(seps))])
			}
			for range 1 + r.Intn(6) {
				c.WriteByte(alnum[r.Intn(len(alnum))])
			}
		}
		comps = append(comps, c.String())
	}
	return strings.Join(comps, "/")
}
