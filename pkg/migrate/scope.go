package migrate

import (
	"strings"

	"regctl/pkg/storage"
)

// Paths here are relative to the Distribution root, storage.Root
// ("blobs/sha256/ab/ab…/data"): the same on both sides, since the
// target's key of a path is rootdirectory + "/docker/registry/v2/" +
// that path (Distribution's and regctl's s3 drivers read it there).

// shardDepth is how deep below the root the tree is cut into shards:
// blobs/<alg>/<xx> and repositories/<a>/<b> (or repositories/<a>/_layers
// for a one-part name). Each shard is listed and compared on its own, so
// the listings of both sides run in parallel and memory holds one shard
// at a time, not the whole tree.
const shardDepth = 3

// excluded reports whether rel is left out of the migration on both
// sides (never copied, never deleted, never verified):
//
//   - _regctl/ at the root: regctl's node heartbeats and maintenance
//     lease, state of the nodes serving one storage, not registry data;
//   - a repository's _uploads/: pushes in progress, which a client
//     restarts anyway (Distribution never reads another storage's);
//   - the S3 driver's own objects of a write in progress.
//
// A repository's _regctl/ (its referrers index) is data and is copied.
func excluded(rel string) bool {
	if strings.HasSuffix(rel, ".regctl-upload") || strings.HasSuffix(rel, ".regctl-pending") {
		return true
	}
	first, rest, _ := strings.Cut(rel, "/")
	switch first {
	case "_regctl":
		return true
	case "repositories":
		// Name components never start with "_", so the first element
		// that does is the repository's own folder; "_uploads" further
		// down is a tag of that name, which is data.
		for rest != "" {
			var el string
			el, rest, _ = strings.Cut(rest, "/")
			if strings.HasPrefix(el, "_") {
				return el == "_uploads"
			}
		}
	}
	return false
}

// isBlobData reports whether rel is a blob's data file,
// blobs/<alg>/<xx>/<hex>/data, and returns the digest it names.
func isBlobData(rel string) (alg, hex string, ok bool) {
	el := strings.Split(rel, "/")
	if len(el) != 5 || el[0] != "blobs" || el[4] != "data" || len(el[3]) < 2 || el[2] != el[3][:2] {
		return "", "", false
	}
	return el[1], el[3], true
}

// driverPath is the driver path of rel.
func driverPath(rel string) string {
	if rel == "" {
		return storage.Root
	}
	return storage.Root + "/" + rel
}

// relOf is the relative path of a driver path below storage.Root.
func relOf(p string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, storage.Root), "/")
}

// depth counts the elements of rel.
func depth(rel string) int {
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// join appends name to rel.
func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}
