package gconline

import (
	"math/rand"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestDoomIndexBloom encodes the doom of 100k digests, then checks the
// decoded index: no false negative, and a measured false positive rate
// within a factor 2 of FalsePositiveRate.
func TestDoomIndexBloom(t *testing.T) {
	const n = 100_000
	r := rand.New(rand.NewSource(5))
	doomed := map[digest.Digest]bool{}
	var es []DoomEntry
	for len(es) < n {
		d := randDigest(r)
		if !doomed[d] {
			doomed[d] = true
			es = append(es, DoomEntry{Digest: d, Blob: true})
		}
	}
	shards, x := encodeDoom(t, es)
	if len(x.Shards) != 256 || len(shards) != 256 {
		t.Fatalf("index lists %d shards, %d files; want 256", len(x.Shards), len(shards))
	}
	for d := range doomed {
		if !x.MayContain(d) {
			t.Fatalf("false negative: %s", d)
		}
	}
	fp, trials := 0, 0
	for trials < n {
		d := randDigest(r)
		if doomed[d] {
			continue
		}
		trials++
		if x.MayContain(d) {
			fp++
		}
	}
	rate := float64(fp) / float64(trials)
	t.Logf("false positive rate %.4f (target %.4f), filter %d bytes for %d digests", rate, FalsePositiveRate, len(x.Bloom.Bits), n)
	if rate > 2*FalsePositiveRate || rate < FalsePositiveRate/2 {
		t.Errorf("false positive rate %.4f, want within 2x of %.4f", rate, FalsePositiveRate)
	}
}

// encodeDoom encodes es and decodes the index back.
func encodeDoom(t *testing.T, es []DoomEntry) (map[string][]byte, *DoomIndex) {
	t.Helper()
	shards, b, err := EncodeDoom(es)
	if err != nil {
		t.Fatal(err)
	}
	x, err := DecodeDoomIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	return shards, x
}

func TestDoomIndexChecksShardFiles(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	es := append(randEntries(r, "01", 3), randEntries(r, "02", 3)...)
	shards, x := encodeDoom(t, es)
	for _, e := range es {
		if !x.MayContain(e.Digest) {
			t.Errorf("MayContain(%s) = false", e.Digest)
		}
	}
	if x.MayContain(randDigestIn(r, "03")) {
		t.Error("MayContain is true in a shard with no file")
	}
	if got, err := x.DecodeShard("01", shards["01"]); err != nil || !sameEntries(got, es[:3]) {
		t.Errorf("DecodeShard(01) = %+v, %v", got, err)
	}
	// A valid file that is not the one the index names.
	other, err := EncodeDoomShard("01", es[:2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.DecodeShard("01", other); err == nil {
		t.Error("DecodeShard accepted a shard file the index does not name")
	}
	if _, err := x.DecodeShard("02", shards["01"]); err == nil {
		t.Error("DecodeShard accepted shard 01's file as shard 02")
	}
	if _, err := x.DecodeShard("03", shards["01"]); err == nil {
		t.Error("DecodeShard accepted a shard the index does not list")
	}
	if _, _, err := EncodeDoom(append(es, es[0])); err == nil {
		t.Error("EncodeDoom accepted a digest twice")
	}
}

func TestNewBloomSizes(t *testing.T) {
	// The textbook figures: 9.59 bits and 7 hashes per element at 1%.
	b := NewBloom(1000, 0.01)
	if bits := len(b.Bits) * 8; bits < 9585 || bits > 9600 || b.Hashes != 7 {
		t.Errorf("NewBloom(1000, 0.01) = %d bits, %d hashes; want 9586..9600 bits, 7 hashes", bits, b.Hashes)
	}
	if e := NewBloom(0, 0.01); len(e.Bits) == 0 || e.MayContain(randDigest(rand.New(rand.NewSource(8)))) {
		t.Errorf("an empty filter has %d bytes or contains something", len(e.Bits))
	}
}
