package gconline

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/opencontainers/go-digest"
)

// FalsePositiveRate is the doom index's target rate. A false positive
// costs a node one shard file GET, once per run (the file is cached), and
// there are only 256 shards, so a low rate buys little; 1% keeps the
// filter at about 9.6 bits (1.2 bytes) per doomed digest, 1.6 in base64,
// which every node downloads once per run: 1.6 MB for a million doomed
// digests.
const FalsePositiveRate = 0.01

// Bloom is a Bloom filter over digests. Positions come from the sha256
// of the digest string (double hashing), so they do not depend on how
// the digest itself was computed and both algorithms share one filter.
type Bloom struct {
	Hashes int    `json:"hashes"`
	Bits   []byte `json:"bits"` // the filter has 8*len(Bits) bits
}

// NewBloom sizes a filter for n digests at false positive rate p:
// m = -n ln p / (ln 2)^2 bits and k = (m/n) ln 2 hashes.
func NewBloom(n int, p float64) *Bloom {
	m := math.Ceil(-float64(max(n, 1)) * math.Log(p) / (math.Ln2 * math.Ln2))
	k := max(1, int(math.Round(m/float64(max(n, 1))*math.Ln2)))
	return &Bloom{Hashes: k, Bits: make([]byte, (int(m)+7)/8)}
}

// Add puts d in the filter.
func (b *Bloom) Add(d digest.Digest) {
	b.positions(d, func(i uint64) bool { b.Bits[i/8] |= 1 << (i % 8); return true })
}

// MayContain is false only if d was never added.
func (b *Bloom) MayContain(d digest.Digest) bool {
	found := true
	b.positions(d, func(i uint64) bool { found = b.Bits[i/8]&(1<<(i%8)) != 0; return found })
	return found
}

// positions calls fn with each of d's bit positions until fn is false.
func (b *Bloom) positions(d digest.Digest, fn func(uint64) bool) {
	sum := sha256.Sum256([]byte(d))
	h1, h2 := binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])|1
	m := uint64(len(b.Bits)) * 8
	for i := 0; i < b.Hashes; i++ {
		if !fn((h1 + uint64(i)*h2) % m) {
			return
		}
	}
}

// DoomIndex is the doom index of a run: a Bloom filter over every doomed
// digest, and the sha256 of each (non-empty) shard's file.
type DoomIndex struct {
	Format string                   `json:"format"`
	Bloom  *Bloom                   `json:"bloom"`
	Shards map[string]digest.Digest `json:"shards"`
}

// EncodeDoom encodes the doom of a run: the file of each shard that has
// entries, and the index over them. The lease's doom field is the sha256
// of the index (digest.FromBytes).
func EncodeDoom(entries []DoomEntry) (shards map[string][]byte, index []byte, err error) {
	byShard := map[string][]DoomEntry{}
	x := DoomIndex{Format: doomIndexFormat, Bloom: NewBloom(len(entries), FalsePositiveRate), Shards: map[string]digest.Digest{}}
	for _, e := range entries {
		if err := CheckDigest(e.Digest); err != nil {
			return nil, nil, err
		}
		byShard[Shard(e.Digest)] = append(byShard[Shard(e.Digest)], e)
		x.Bloom.Add(e.Digest)
	}
	shards = map[string][]byte{}
	for xx, es := range byShard {
		if shards[xx], err = EncodeDoomShard(xx, es); err != nil {
			return nil, nil, err
		}
		x.Shards[xx] = digest.FromBytes(shards[xx])
	}
	index, err = seal(&x)
	return shards, index, err
}

// DecodeDoomIndex decodes a doom index, rejecting a corrupt or truncated
// one.
func DecodeDoomIndex(b []byte) (*DoomIndex, error) {
	var x DoomIndex
	if err := unseal(b, doomIndexFormat, &x); err != nil {
		return nil, err
	}
	if x.Bloom == nil || x.Bloom.Hashes < 1 || len(x.Bloom.Bits) == 0 {
		return nil, fmt.Errorf("gconline: doom index without a usable Bloom filter")
	}
	for xx, sum := range x.Shards {
		if err := checkShard(xx); err != nil {
			return nil, err
		}
		if sum.Algorithm() != digest.SHA256 || CheckDigest(sum) != nil {
			return nil, fmt.Errorf("gconline: doom index: bad checksum %q for shard %s", sum, xx)
		}
	}
	return &x, nil
}

// MayContain is false only if d is not doomed. When true, the shard file
// says (a shard the index does not list has no file: nothing is doomed).
func (x *DoomIndex) MayContain(d digest.Digest) bool {
	_, ok := x.Shards[Shard(d)]
	return ok && x.Bloom.MayContain(d)
}

// DecodeShard decodes the file of shard xx after checking it is the file
// the index names.
func (x *DoomIndex) DecodeShard(xx string, b []byte) ([]DoomEntry, error) {
	want, ok := x.Shards[xx]
	if !ok {
		return nil, fmt.Errorf("gconline: doom index lists no shard %q", xx)
	}
	if got := digest.FromBytes(b); got != want {
		return nil, fmt.Errorf("gconline: doom shard %s is %s, the index says %s", xx, got, want)
	}
	return DecodeDoomShard(xx, b)
}
