package gconline

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestClaimRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := range 500 {
		xx := Shard(randDigest(r))
		c := Claim{State: []ClaimState{Claimed, Deleting, Done}[i%3]}
		if c.State != Claimed {
			for range r.Intn(10) {
				c.Final = append(c.Final, randDigestIn(r, xx))
			}
		}
		b, err := EncodeClaim(xx, c)
		if err != nil {
			t.Fatalf("EncodeClaim(%+v): %v", c, err)
		}
		got, err := DecodeClaim(xx, b)
		if err != nil {
			t.Fatalf("DecodeClaim(%s): %v", b, err)
		}
		want := slices.Sorted(slices.Values(c.Final))
		if got.State != c.State || !slices.Equal(got.Final, want) {
			t.Fatalf("round trip %+v -> %s -> %+v", c, b, got)
		}
		for _, d := range c.Final {
			if !got.Names(d) {
				t.Fatalf("Names(%s) = false", d)
			}
		}
		if got.Names(randDigestIn(r, xx)) {
			t.Fatal("Names is true for a digest not in the list")
		}
	}
}

func TestClaimStoredForm(t *testing.T) {
	for c, want := range map[*Claim]string{
		{State: Claimed}:  `{"state":"claimed"}`,
		{State: Deleting}: `{"state":"deleting","final":[]}`,
		{State: Done, Final: []digest.Digest{"sha256:ab" + digest.Digest(make62())}}: `{"state":"done","final":["sha256:ab` + make62() + `"]}`,
	} {
		b, err := EncodeClaim("ab", *c)
		if err != nil || string(b) != want {
			t.Errorf("EncodeClaim(%+v) = %s, %v; want %s", *c, b, err, want)
		}
	}
}

func make62() string { return "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd" }

func TestDecodeClaimRejects(t *testing.T) {
	d := `"sha256:ab` + make62() + `"`
	for _, s := range []string{
		``, `{}`, `{"state":"gone"}`, `{"state":"Claimed"}`,
		`{"state":"claimed","final":[]}`,
		`{"state":"deleting"}`, `{"state":"done"}`, `{"state":"done","final":null}`,
		`{"state":"deleting","final":["sha256:AB` + make62() + `"]}`,
		`{"state":"deleting","final":["sha256:cd` + make62() + `"]}`, // another shard
		`{"state":"deleting","final":[` + d + `,` + d + `]}`,
		`{"state":"deleting","final":[` + d + `],"extra":1}`,
		`{"state":"deleting","final":[` + d + `]}{}`,
	} {
		if c, err := DecodeClaim("ab", []byte(s)); err == nil {
			t.Errorf("DecodeClaim(%s) = %+v, want an error", s, c)
		}
	}
	full := `{"state":"done","final":[` + d + `]}`
	if _, err := DecodeClaim("ab", []byte(full)); err != nil {
		t.Fatalf("DecodeClaim(%s): %v", full, err)
	}
	for i := range len(full) {
		if _, err := DecodeClaim("ab", []byte(full[:i])); err == nil {
			t.Errorf("claim truncated to %d bytes was accepted: %s", i, full[:i])
		}
	}
}

func TestClaimTransitions(t *testing.T) {
	final := []digest.Digest{"sha256:ab" + digest.Digest(make62())}
	states := []*Claim{nil, {State: Claimed}, {State: Deleting, Final: final}, {State: Done, Final: final}}
	legal := map[[2]int]bool{{0, 1}: true, {1, 2}: true, {2, 3}: true}
	for i, from := range states {
		for j, to := range states[1:] {
			err := CheckTransition(from, *to)
			if legal[[2]int{i, j + 1}] != (err == nil) {
				t.Errorf("CheckTransition(%v, %s) = %v", from, to.State, err)
			}
		}
	}
	if err := CheckTransition(states[2], Claim{State: Done}); err == nil {
		t.Error("deleting -> done accepted a changed final list")
	}
}
