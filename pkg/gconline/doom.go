package gconline

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Format names of the doom files; a new layout gets a new name.
const (
	doomShardFormat = "regctl-gc-doom-shard/1"
	doomIndexFormat = "regctl-gc-doom-index/1"
)

// DoomEntry is what a run dooms under one digest.
type DoomEntry struct {
	Digest digest.Digest `json:"digest"`
	// Blob is set when the blob itself is doomed.
	Blob bool `json:"blob,omitempty"`
	// Layers are the repositories whose layer link to Digest is doomed.
	Layers []string `json:"layers,omitempty"`
	// Revisions are the repositories whose revision Digest is doomed.
	Revisions []DoomedRevision `json:"revisions,omitempty"`
}

// DoomedRevision is a doomed revision with its doomed closure: what it
// needs in the same repository that is doomed too (referrers included
// with -m). A node promising the revision promises its closure as well.
type DoomedRevision struct {
	Repo    string          `json:"repo"`
	Closure []digest.Digest `json:"closure,omitempty"`
}

// DoomShard is the content of one doom shard file.
type DoomShard struct {
	Format  string      `json:"format"`
	Shard   string      `json:"shard"`
	Entries []DoomEntry `json:"entries"`
}

// EncodeDoomShard encodes the entries of shard xx. The file is
// canonical: entries, repositories and closures are sorted (in a copy),
// so one content has one encoding and one checksum.
func EncodeDoomShard(xx string, entries []DoomEntry) ([]byte, error) {
	s := DoomShard{Format: doomShardFormat, Shard: xx, Entries: make([]DoomEntry, len(entries))}
	for i, e := range entries {
		e.Layers = slices.Sorted(slices.Values(e.Layers))
		e.Revisions = slices.Clone(e.Revisions)
		for j, r := range e.Revisions {
			e.Revisions[j].Closure = slices.Sorted(slices.Values(r.Closure))
		}
		slices.SortFunc(e.Revisions, func(a, b DoomedRevision) int { return cmp.Compare(a.Repo, b.Repo) })
		s.Entries[i] = e
	}
	slices.SortFunc(s.Entries, func(a, b DoomEntry) int { return cmp.Compare(a.Digest, b.Digest) })
	if err := s.check(xx); err != nil {
		return nil, err
	}
	return seal(&s)
}

// DecodeDoomShard decodes the doom shard file of shard xx. It rejects a
// file that is corrupt, truncated, of another shard or not canonical.
func DecodeDoomShard(xx string, b []byte) ([]DoomEntry, error) {
	var s DoomShard
	if err := unseal(b, doomShardFormat, &s); err != nil {
		return nil, err
	}
	if err := s.check(xx); err != nil {
		return nil, err
	}
	return s.Entries, nil
}

// check validates a canonical shard: every name valid, every list sorted
// without duplicates, every entry in shard xx and dooming something.
func (s *DoomShard) check(xx string) error {
	if err := checkShard(xx); err != nil {
		return err
	}
	if s.Shard != xx {
		return fmt.Errorf("gconline: doom shard file of shard %q read as shard %q", s.Shard, xx)
	}
	for i, e := range s.Entries {
		if err := CheckDigest(e.Digest); err != nil {
			return err
		}
		if Shard(e.Digest) != xx {
			return fmt.Errorf("gconline: doom shard %s holds %s of another shard", xx, e.Digest)
		}
		if i > 0 && s.Entries[i-1].Digest >= e.Digest {
			return fmt.Errorf("gconline: doom shard %s: %s listed twice or out of order", xx, e.Digest)
		}
		if !e.Blob && len(e.Layers) == 0 && len(e.Revisions) == 0 {
			return fmt.Errorf("gconline: doom shard %s: %s dooms nothing", xx, e.Digest)
		}
		if err := checkSortedRepos(e.Layers); err != nil {
			return fmt.Errorf("doom shard %s, layers of %s: %w", xx, e.Digest, err)
		}
		for j, r := range e.Revisions {
			if err := CheckRepository(r.Repo); err != nil {
				return err
			}
			if j > 0 && e.Revisions[j-1].Repo >= r.Repo {
				return fmt.Errorf("gconline: doom shard %s: revision %s of %s listed twice or out of order", xx, e.Digest, r.Repo)
			}
			if err := checkSortedDigests(r.Closure); err != nil {
				return fmt.Errorf("doom shard %s, closure of %s in %s: %w", xx, e.Digest, r.Repo, err)
			}
		}
	}
	return nil
}

func checkSortedRepos(repos []string) error { return checkSorted(repos, CheckRepository) }

func checkSortedDigests(ds []digest.Digest) error { return checkSorted(ds, CheckDigest) }

// checkSorted checks each of xs, and that they are sorted without
// duplicates: the canonical form of a list in these files.
func checkSorted[T ~string](xs []T, check func(T) error) error {
	for i, x := range xs {
		if err := check(x); err != nil {
			return err
		}
		if i > 0 && xs[i-1] >= x {
			return fmt.Errorf("gconline: %q listed twice or out of order", x)
		}
	}
	return nil
}
