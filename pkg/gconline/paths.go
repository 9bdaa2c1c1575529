// Package gconline is the online GC protocol's storage formats: the paths
// of its objects, the promise marker keys, the doom shard files and index,
// and the shard claims (docs/gc-online.md, section 4.1). Later steps add
// the protocol itself.
package gconline

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/maintenance"
)

// Paths of the protocol's objects. The lease and the heartbeats are
// pkg/maintenance's; gc/last-run.json is pkg/gcreport's.
const (
	// Dir is the online GC's folder.
	Dir = maintenance.Prefix + "/gc"
	// PromisesDir holds the promise markers, one folder per generation.
	PromisesDir = Dir + "/promises"
	// RunsDir holds one folder per online run, named by its epoch.
	RunsDir = Dir + "/runs"
	// CarriedPath lists the promises carried into the next generation.
	CarriedPath = Dir + "/carried.json"
	// ScheduleDir holds the scheduler's election objects.
	ScheduleDir = Dir + "/schedule"
)

// BootGeneration is a node's generation before it has seen an online
// lease in phase doom or later.
func BootGeneration(nodeID string) string { return "boot-" + nodeID }

// GenerationDir holds the markers of generation gen.
func GenerationDir(gen string) string { return PromisesDir + "/" + gen }

// PromiseShardDir holds the markers of generation gen for shard xx: the
// folder the collector lists after claiming the shard.
func PromiseShardDir(gen, xx string) string { return GenerationDir(gen) + "/" + xx }

// RunDir holds the objects of the run with epoch e (its lease id).
func RunDir(e string) string { return RunsDir + "/" + e }

// DoomIndexPath is the doom index of run e.
func DoomIndexPath(e string) string { return RunDir(e) + "/doom/index" }

// DoomShardPath is the doom shard file of shard xx in run e.
func DoomShardPath(e, xx string) string { return RunDir(e) + "/doom/" + xx }

// ClaimPath is the claim of shard xx in run e.
func ClaimPath(e, xx string) string { return RunDir(e) + "/sweep/" + xx }

// SchedulePath is the election object of a scheduler slot.
func SchedulePath(slot string) string { return ScheduleDir + "/" + slot + ".json" }

// Shard is the shard of d: the first two hex characters of its hex part,
// so 256 shards whatever the algorithm.
func Shard(d digest.Digest) string { return d.Encoded()[:2] }

// hexLen is the length of the hex part of the digests regctl stores.
var hexLen = map[digest.Algorithm]int{digest.SHA256: 64, digest.SHA512: 128}

// CheckDigest accepts sha256 and sha512 digests with the right number of
// lowercase hex digits, and nothing else: a digest is a storage key here.
func CheckDigest(d digest.Digest) error {
	alg, hex, ok := strings.Cut(string(d), ":")
	n, known := hexLen[digest.Algorithm(alg)]
	if !ok || !known || len(hex) != n || !isLowerHex(hex) {
		return fmt.Errorf("gconline: invalid digest %q (want sha256 or sha512, lowercase hex)", d)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// checkSegment accepts a generation or epoch id: one path segment, as
// lease and node ids are (letters, digits, '.', '_', '-', no leading
// '.' or '-').
func checkSegment(what, s string) error {
	ok := s != "" && len(s) <= 256 && s[0] != '.' && s[0] != '-'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("gconline: invalid %s %q", what, s)
	}
	return nil
}

// checkShard accepts a shard name: two lowercase hex digits.
func checkShard(xx string) error {
	if len(xx) != 2 || !isLowerHex(xx) {
		return fmt.Errorf("gconline: invalid shard %q", xx)
	}
	return nil
}
