package gconline

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// randEntries is n random entries of shard xx, as a collector makes them
// (unsorted).
func randEntries(r *rand.Rand, xx string, n int) []DoomEntry {
	var es []DoomEntry
	seen := map[digest.Digest]bool{}
	for len(es) < n {
		e := DoomEntry{Digest: randDigestIn(r, xx), Blob: r.Intn(2) == 0}
		if seen[e.Digest] {
			continue
		}
		seen[e.Digest] = true
		repos := map[string]bool{}
		for range r.Intn(3) {
			repos[randRepo(r)] = true
		}
		for repo := range repos {
			if r.Intn(2) == 0 {
				e.Layers = append(e.Layers, repo)
				continue
			}
			rev := DoomedRevision{Repo: repo}
			for range r.Intn(3) {
				rev.Closure = append(rev.Closure, randDigest(r))
			}
			e.Revisions = append(e.Revisions, rev)
		}
		if !e.Blob && len(repos) == 0 {
			e.Blob = true
		}
		es = append(es, e)
	}
	return es
}

func TestDoomShardRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := range 300 {
		xx := fmt.Sprintf("%02x", i%256)
		es := randEntries(r, xx, r.Intn(20))
		b, err := EncodeDoomShard(xx, es)
		if err != nil {
			t.Fatalf("EncodeDoomShard: %v", err)
		}
		got, err := DecodeDoomShard(xx, b)
		if err != nil {
			t.Fatalf("DecodeDoomShard: %v\n%s", err, b)
		}
		if !sameEntries(got, es) {
			t.Fatalf("round trip of shard %s changed the entries:\n got %+v\nwant %+v", xx, got, es)
		}
		// Deterministic: the same entries in another order give the same bytes.
		r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		if again, _ := EncodeDoomShard(xx, es); !bytes.Equal(again, b) {
			t.Fatalf("encoding depends on the order of the entries:\n%s\n%s", b, again)
		}
	}
}

// sameEntries compares entries as sets (the file is sorted).
func sameEntries(a, b []DoomEntry) bool {
	index := func(es []DoomEntry) map[string]bool {
		m := map[string]bool{}
		for _, e := range es {
			m[fmt.Sprint(e.Digest, e.Blob)] = true
			for _, l := range e.Layers {
				m[fmt.Sprint(e.Digest, " layer ", l)] = true
			}
			for _, rev := range e.Revisions {
				m[fmt.Sprint(e.Digest, " rev ", rev.Repo)] = true
				for _, c := range rev.Closure {
					m[fmt.Sprint(e.Digest, " rev ", rev.Repo, " needs ", c)] = true
				}
			}
		}
		return m
	}
	return len(a) == len(b) && reflect.DeepEqual(index(a), index(b))
}

// TestSealedFilesRejectDamage cuts and alters a small shard file and a
// small index at every byte: no damaged file may decode.
func TestSealedFilesRejectDamage(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	shards, index, err := EncodeDoom(randEntries(r, "7e", 2))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"shard": {shards["7e"], func(b []byte) error { _, err := DecodeDoomShard("7e", b); return err }},
		"index": {index, func(b []byte) error { _, err := DecodeDoomIndex(b); return err }},
	}
	for name, f := range files {
		if err := f.decode(f.b); err != nil {
			t.Fatalf("%s: intact file rejected: %v", name, err)
		}
		for i := range len(f.b) {
			if f.decode(f.b[:i]) == nil {
				t.Errorf("%s truncated to %d of %d bytes was accepted", name, i, len(f.b))
			}
			for _, flip := range []byte{0x01, 0x20, 0x80} {
				bad := bytes.Clone(f.b)
				bad[i] ^= flip
				if f.decode(bad) == nil {
					t.Errorf("%s with byte %d xor %#x was accepted", name, i, flip)
				}
			}
		}
		if f.decode(append(bytes.Clone(f.b), "x\n"...)) == nil {
			t.Errorf("%s with a line appended was accepted", name)
		}
	}
}

func TestDoomShardRejectsInvalidContent(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	in := func(xx string) digest.Digest { return randDigestIn(r, xx) }
	d1, d2 := in("ab"), in("ab")
	if d2 < d1 {
		d1, d2 = d2, d1
	}
	cases := map[string]DoomShard{
		"other shard":      {Shard: "cd", Entries: []DoomEntry{}},
		"entry elsewhere":  {Shard: "ab", Entries: []DoomEntry{{Digest: in("cd"), Blob: true}}},
		"unsorted":         {Shard: "ab", Entries: []DoomEntry{{Digest: d2, Blob: true}, {Digest: d1, Blob: true}}},
		"twice":            {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Blob: true}, {Digest: d1, Blob: true}}},
		"dooms nothing":    {Shard: "ab", Entries: []DoomEntry{{Digest: d1}}},
		"bad layer repo":   {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Layers: []string{"Bad"}}}},
		"bad revision":     {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Revisions: []DoomedRevision{{Repo: "a//b"}}}}},
		"bad closure":      {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Revisions: []DoomedRevision{{Repo: "a", Closure: []digest.Digest{"sha256:00"}}}}}},
		"bad digest":       {Shard: "ab", Entries: []DoomEntry{{Digest: digest.Digest(strings.ToUpper(string(d1))), Blob: true}}},
		"unsorted layers":  {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Layers: []string{"b", "a"}}}},
		"unknown version":  {Format: "regctl-gc-doom-shard/2", Shard: "ab", Entries: []DoomEntry{{Digest: d1, Blob: true}}},
		"duplicate layers": {Shard: "ab", Entries: []DoomEntry{{Digest: d1, Layers: []string{"a", "a"}}}},
	}
	for name, s := range cases {
		if s.Format == "" {
			s.Format = doomShardFormat
		}
		b, err := seal(&s) // sealed as given, bypassing EncodeDoomShard's sorting
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDoomShard("ab", b); err == nil {
			t.Errorf("%s: accepted\n%s", name, b)
		}
	}
	// A newer version with a field this one does not know: named as such.
	b, err := seal(map[string]any{"format": "regctl-gc-doom-shard/2", "shard": "ab", "new": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeDoomShard("ab", b); err == nil || !strings.Contains(err.Error(), "unsupported format") {
		t.Errorf("a newer version decodes with error %v, want unsupported format", err)
	}
	if _, err := EncodeDoomShard("ab", []DoomEntry{{Digest: in("cd"), Blob: true}}); err == nil {
		t.Error("EncodeDoomShard accepted an entry of another shard")
	}
}
