package gc

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestManifestCacheRoundTrip(t *testing.T) {
	t.Parallel()
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.SHA512.FromString("c")
	in := map[digest.Digest]cachedManifest{
		a: {md5: strings.Repeat("0f", 16), size: 512, info: &manifestInfo{refs: []digest.Digest{b, c, b}}},
		b: {md5: strings.Repeat("a1", 16), size: 0, info: &manifestInfo{subject: a}},
		c: {md5: strings.Repeat("99", 16), size: 7, info: &manifestInfo{refs: []digest.Digest{a}, subject: b}},
	}
	enc := encodeManifestCache(in)
	out, err := decodeManifestCache(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d entries back, want %d", len(out), len(in))
	}
	for d, want := range in {
		got := out[d]
		if got.md5 != want.md5 || got.size != want.size || got.info.subject != want.info.subject ||
			!slices.Equal(got.info.refs, want.info.refs) || got.info.err != nil {
			t.Errorf("%s: got %+v %+v, want %+v %+v", d, got, got.info, want, want.info)
		}
	}
	if !bytes.Equal(encodeManifestCache(out), enc) {
		t.Error("encoding is not deterministic")
	}
}

// A damaged file is refused as a whole, whatever the damage.
func TestManifestCacheDamaged(t *testing.T) {
	t.Parallel()
	a, b := digest.FromString("a"), digest.FromString("b")
	good := encodeManifestCache(map[digest.Digest]cachedManifest{
		a: {md5: strings.Repeat("0f", 16), size: 512, info: &manifestInfo{refs: []digest.Digest{b}}},
	})
	body := good[:bytes.LastIndex(good[:len(good)-1], []byte("\n"))+1]
	resum := func(body string) []byte { // a well-formed checksum over bad content
		return append([]byte(body), checksumLine([]byte(body))...)
	}
	cases := map[string][]byte{
		"empty":           nil,
		"truncated":       good[:len(good)-10],
		"no newline":      good[:len(good)-1],
		"flipped byte":    bytes.Replace(good, []byte(" 512 "), []byte(" 513 "), 1),
		"no checksum":     body,
		"other version":   resum(strings.Replace(string(body), "cache v1", "cache v0", 1)),
		"bad md5":         resum(strings.Replace(string(body), strings.Repeat("0f", 16), strings.Repeat("0F", 16), 1)),
		"bad size":        resum(strings.Replace(string(body), " 512 ", " -1 ", 1)),
		"bad reference":   resum(strings.Replace(string(body), b.String(), "sha256:xyz", 1)),
		"missing field":   resum(strings.Replace(string(body), " 512 ", " ", 1)),
		"bad digest line": resum(string(body) + "sha256:abc " + strings.Repeat("00", 16) + " 1 - -\n"),
	}
	for name, b := range cases {
		if _, err := decodeManifestCache(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeManifestCache(resum(string(body))); err != nil {
		t.Errorf("the checksum helper is wrong: %v", err)
	}
}

// An entry naming a digest the format cannot hold is left out.
func TestManifestCacheUncacheable(t *testing.T) {
	t.Parallel()
	if cacheable(&manifestInfo{refs: []digest.Digest{"sha256:a b"}}) || cacheable(&manifestInfo{subject: "x,y"}) {
		t.Error("odd digests called cacheable")
	}
	if !cacheable(&manifestInfo{refs: []digest.Digest{digest.FromString("a")}}) || !cacheable(&manifestInfo{err: errors.New("x")}) {
		t.Error("valid digests called uncacheable")
	}
}
