package gconline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
)

// ClaimState is the state of a shard claim, gc/runs/<E>/sweep/<xx>.
type ClaimState string

// A claim is created exclusively as claimed; the collector then writes
// the final list (deleting), deletes, and marks it done. No claim at all
// means the shard is not being swept.
const (
	Claimed  ClaimState = "claimed"
	Deleting ClaimState = "deleting"
	Done     ClaimState = "done"
)

// Claim is a shard claim. Final, the digests the collector deletes in
// the shard, is written with deleting and kept unchanged by done; a
// claimed claim has none yet.
type Claim struct {
	State ClaimState
	Final []digest.Digest
}

// claimJSON is the stored form, {"state":"claimed"} or
// {"state":"deleting","final":[...]}: Final is a pointer so that an
// empty final list (every doomed digest was promised late) differs from
// none.
type claimJSON struct {
	State ClaimState       `json:"state"`
	Final *[]digest.Digest `json:"final,omitempty"`
}

// EncodeClaim encodes c, a claim of shard xx, with its final list sorted.
func EncodeClaim(xx string, c Claim) ([]byte, error) {
	c.Final = slices.Sorted(slices.Values(c.Final))
	if err := c.check(xx); err != nil {
		return nil, err
	}
	j := claimJSON{State: c.State}
	if c.State != Claimed {
		final := append([]digest.Digest{}, c.Final...) // [] rather than null
		j.Final = &final
	}
	return json.Marshal(j)
}

// DecodeClaim decodes a claim of shard xx. A claim is small and written
// whole by one PutContent; a truncated one is not valid JSON.
func DecodeClaim(xx string, b []byte) (Claim, error) {
	var j claimJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Claim{}, fmt.Errorf("gconline: claim of shard %s: %w", xx, err)
	}
	if dec.More() {
		return Claim{}, fmt.Errorf("gconline: claim of shard %s: trailing data", xx)
	}
	c := Claim{State: j.State}
	if j.Final != nil {
		c.Final = *j.Final
	}
	if (j.Final != nil) != (c.State == Deleting || c.State == Done) {
		return Claim{}, fmt.Errorf("gconline: claim of shard %s: state %q with final list present=%v", xx, c.State, j.Final != nil)
	}
	if err := c.check(xx); err != nil {
		return Claim{}, err
	}
	return c, nil
}

func (c Claim) check(xx string) error {
	if err := checkShard(xx); err != nil {
		return err
	}
	switch c.State {
	case Claimed:
		if len(c.Final) > 0 {
			return fmt.Errorf("gconline: claim of shard %s: claimed with a final list", xx)
		}
	case Deleting, Done:
	default:
		return fmt.Errorf("gconline: claim of shard %s: unknown state %q", xx, c.State)
	}
	if err := checkSortedDigests(c.Final); err != nil {
		return fmt.Errorf("claim of shard %s: %w", xx, err)
	}
	for _, d := range c.Final {
		if Shard(d) != xx {
			return fmt.Errorf("gconline: claim of shard %s names %s of another shard", xx, d)
		}
	}
	return nil
}

// Names reports whether the final list names d.
func (c Claim) Names(d digest.Digest) bool {
	_, found := slices.BinarySearch(c.Final, d)
	return found
}

// CheckTransition accepts the legal steps of a claim: none (from nil) to
// claimed, claimed to deleting, and deleting to done with the same final
// list. Anything else (going back, skipping a state, changing the final
// list) is a bug in the collector.
func CheckTransition(from *Claim, to Claim) error {
	switch {
	case from == nil && to.State == Claimed,
		from != nil && from.State == Claimed && to.State == Deleting:
		return nil
	case from != nil && from.State == Deleting && to.State == Done:
		if !slices.Equal(slices.Sorted(slices.Values(from.Final)), slices.Sorted(slices.Values(to.Final))) {
			return fmt.Errorf("gconline: claim deleting to done changes the final list")
		}
		return nil
	}
	fromState := ClaimState("none")
	if from != nil {
		fromState = from.State
	}
	return fmt.Errorf("gconline: illegal claim transition %s -> %s", fromState, to.State)
}
