package gconline

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestMarkerRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	gens := []string{"0123456789abcdef", BootGeneration("node-1.example")}
	for range 5000 {
		gen, d, repo := gens[r.Intn(len(gens))], randDigest(r), randRepo(r)
		key, err := EncodeMarker(gen, d, repo)
		if err != nil {
			t.Fatalf("EncodeMarker(%q, %s, %q): %v", gen, d, repo, err)
		}
		want := "/docker/registry/v2/_regctl/gc/promises/" + gen + "/" + d.Encoded()[:2] + "/" + string(d.Algorithm()) + "/" + d.Encoded() + "/" + repo
		if key != want {
			t.Fatalf("EncodeMarker = %q, want %q", key, want)
		}
		g2, d2, r2, err := DecodeMarker(key)
		if err != nil || g2 != gen || d2 != d || r2 != repo {
			t.Fatalf("DecodeMarker(%q) = %q, %s, %q, %v", key, g2, d2, r2, err)
		}
	}
}

func TestMarkerRejectsBadParts(t *testing.T) {
	good := digest.Digest("sha256:" + strings.Repeat("ab", 32))
	badDigests := []digest.Digest{
		"", "sha256", "sha256:", good[:len(good)-1], good + "0",
		digest.Digest(strings.ToUpper(string(good))), "sha256:" + digest.Digest(strings.Repeat("AB", 32)),
		"sha256:" + digest.Digest(strings.Repeat("g", 64)), "sha384:" + digest.Digest(strings.Repeat("a", 96)),
		"sha512:" + digest.Digest(strings.Repeat("a", 64)), "md5:" + digest.Digest(strings.Repeat("a", 32)),
	}
	for _, d := range badDigests {
		if _, err := EncodeMarker("gen", d, "repo"); err == nil {
			t.Errorf("EncodeMarker accepted digest %q", d)
		}
	}
	badRepos := []string{"", "A", "a/", "/a", "a//b", "../a", "a/../b", "a b", "a%2e", "-a", "a__-b", strings.Repeat("a", 256)}
	for _, repo := range badRepos {
		if _, err := EncodeMarker("gen", good, repo); err == nil {
			t.Errorf("EncodeMarker accepted repository %q", repo)
		}
		if _, _, _, err := DecodeMarker(PromisesDir + "/gen/ab/sha256/" + good.Encoded() + "/" + repo); err == nil {
			t.Errorf("DecodeMarker accepted repository %q", repo)
		}
	}
	for _, gen := range []string{"", ".", "..", "a/b", "-x", "a b"} {
		if _, err := EncodeMarker(gen, good, "repo"); err == nil {
			t.Errorf("EncodeMarker accepted generation %q", gen)
		}
	}
	hex := good.Encoded()
	for _, key := range []string{
		PromisesDir + "/gen/cd/sha256/" + hex + "/repo",                     // shard does not match
		PromisesDir + "/gen/AB/sha256/" + strings.ToUpper(hex) + "/repo",    // uppercase
		PromisesDir + "/gen/ab/sha256/" + hex,                               // no repository
		PromisesDir + "/gen/ab/sha256/" + hex + "/",                         // empty repository
		PromisesDir + "/gen/ab/sha384/" + hex + "/repo",                     // unknown algorithm
		PromisesDir + "/gen/ab/sha256/" + hex[:60] + "/repo",                // short hex
		PromisesDir + "/ab/sha256/" + hex + "/repo",                         // no generation
		Dir + "/promise/gen/ab/sha256/" + hex + "/repo",                     // another folder
		"/docker/registry/v2/_regctl/gc/promises/gen/ab/sha256/" + hex + "", // no repository
	} {
		if _, _, _, err := DecodeMarker(key); err == nil {
			t.Errorf("DecodeMarker accepted %q", key)
		}
	}
}

func TestPathsAreUnderTheMaintenancePrefix(t *testing.T) {
	for _, p := range []string{
		DoomIndexPath("e1"), DoomShardPath("e1", "ab"), ClaimPath("e1", "ab"),
		CarriedPath, SchedulePath("2026-12-08T01"), PromiseShardDir("g", "00"),
	} {
		if !strings.HasPrefix(p, "/docker/registry/v2/_regctl/gc/") {
			t.Errorf("%q is not under _regctl/gc", p)
		}
	}
	if got, want := ClaimPath("e1", "ab"), "/docker/registry/v2/_regctl/gc/runs/e1/sweep/ab"; got != want {
		t.Errorf("ClaimPath = %q, want %q", got, want)
	}
	if got, want := DoomShardPath("e1", "0f"), "/docker/registry/v2/_regctl/gc/runs/e1/doom/0f"; got != want {
		t.Errorf("DoomShardPath = %q, want %q", got, want)
	}
	if got, want := DoomIndexPath("e1"), "/docker/registry/v2/_regctl/gc/runs/e1/doom/index"; got != want {
		t.Errorf("DoomIndexPath = %q, want %q", got, want)
	}
}
