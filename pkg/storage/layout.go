package storage

import (
	"path"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Root is where Distribution keeps everything inside a storage root.
const Root = "/docker/registry/v2"

// The layout below is Distribution's, byte for byte: a link file holds
// only a digest string ("sha256:..."), with no newline.

// BlobDataPath is blobs/<alg>/<hex[0:2]>/<hex>/data.
//
// The path functions trust their arguments: digests must be valid
// (d.Validate()), and names and tags must match the distribution
// reference grammar, or path.Join's cleaning could make ".." climb.
func BlobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	return join(Root, "blobs", d.Algorithm().String(), hex[:2], hex, "data")
}

// BlobDir is the folder of one blob.
func BlobDir(d digest.Digest) string {
	hex := d.Encoded()
	return join(Root, "blobs", d.Algorithm().String(), hex[:2], hex)
}

// BlobsRoot is the folder of all blobs.
func BlobsRoot() string { return join(Root, "blobs") }

// RepositoriesRoot is the folder of all repositories.
func RepositoriesRoot() string { return join(Root, "repositories") }

// RepositoryDir is repositories/<name>.
func RepositoryDir(name string) string { return join(RepositoriesRoot(), name) }

// LayerLinkPath is the link that makes a blob part of a repository.
func LayerLinkPath(name string, d digest.Digest) string {
	return join(Root, "repositories", name, "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

// LayersDir holds a repository's layer links.
func LayersDir(name string) string { return join(RepositoryDir(name), "_layers") }

// ManifestsDir holds a repository's revisions and tags.
func ManifestsDir(name string) string { return join(RepositoryDir(name), "_manifests") }

// ManifestRevisionLinkPath is the link that makes a manifest part of a repository.
func ManifestRevisionLinkPath(name string, d digest.Digest) string {
	return join(Root, "repositories", name, "_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
}

// ManifestRevisionDir is the folder of one manifest revision.
func ManifestRevisionDir(name string, d digest.Digest) string {
	return join(ManifestsDir(name), "revisions", d.Algorithm().String(), d.Encoded())
}

// ManifestRevisionsDir holds every revision of a repository.
func ManifestRevisionsDir(name string) string { return join(ManifestsDir(name), "revisions") }

// TagsDir holds a repository's tags.
func TagsDir(name string) string { return join(ManifestsDir(name), "tags") }

// TagDir is the folder of one tag.
func TagDir(name, tag string) string { return join(TagsDir(name), tag) }

// TagCurrentLinkPath names the manifest a tag points at now.
func TagCurrentLinkPath(name, tag string) string {
	return join(Root, "repositories", name, "_manifests", "tags", tag, "current", "link")
}

// TagIndexEntryLinkPath records that a tag once pointed at a revision.
func TagIndexEntryLinkPath(name, tag string, d digest.Digest) string {
	return join(TagDir(name, tag), "index", d.Algorithm().String(), d.Encoded(), "link")
}

// TagIndexDir holds every revision a tag ever pointed at.
func TagIndexDir(name, tag string) string { return join(TagDir(name, tag), "index") }

// UploadsDir holds a repository's uploads in progress.
func UploadsDir(name string) string { return join(RepositoryDir(name), "_uploads") }

// UploadDataPath is the bytes of one upload.
func UploadDataPath(name, id string) string { return join(UploadsDir(name), id, "data") }

// UploadStartedAtPath records when an upload began (RFC 3339), for purging.
func UploadStartedAtPath(name, id string) string {
	return join(UploadsDir(name), id, "startedat")
}

// UploadHashStatePath keeps the hash state of an upload at an offset, so
// a chunked upload resumes hashing without re-reading its data.
func UploadHashStatePath(name, id string, alg digest.Algorithm, offset int64) string {
	return join(UploadsDir(name), id, "hashstates", alg.String(), strconv.FormatInt(offset, 10))
}

// UploadDir is the folder of one upload.
func UploadDir(name, id string) string { return join(UploadsDir(name), id) }

// RegctlDir is where regctl keeps what it adds to a repository (the
// referrers index). Distribution only reads _layers, _manifests and
// _uploads, so it ignores this folder.
func RegctlDir(name string) string { return join(RepositoryDir(name), "_regctl") }

// ReferrerLinkPath records that manifest ref has subject as its subject.
func ReferrerLinkPath(name string, subject, ref digest.Digest) string {
	return join(ReferrersDir(name, subject), ref.Algorithm().String(), ref.Encoded(), "link")
}

// ReferrersDir holds the referrers of one subject.
func ReferrersDir(name string, subject digest.Digest) string {
	return join(RegctlDir(name), "referrers", subject.Algorithm().String(), subject.Encoded())
}

// join is path.Join. Layout paths are built on every request, and their
// parts are nearly always clean already (a valid name, tag or digest), so
// join only concatenates them then, sparing path.Join's Clean; anything
// else goes through path.Join itself.
func join(elems ...string) string {
	for i, e := range elems {
		if !cleanPart(e, i == 0) {
			return path.Join(elems...)
		}
	}
	return strings.Join(elems, "/")
}

// cleanPart reports whether e joins to others unchanged: non-empty, no
// "." or ".." element, no empty element (so no "//" and no trailing "/"),
// and a leading "/" only on the first part.
func cleanPart(e string, first bool) bool {
	if first {
		if rest, ok := strings.CutPrefix(e, "/"); ok {
			e = rest
		}
	}
	for more := true; more; {
		var elem string
		elem, e, more = strings.Cut(e, "/")
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// RepositoryName turns a path below RepositoriesRoot into its name, and
// reports whether path is a repository's _manifests folder.
func RepositoryName(manifestsDir string) (string, bool) {
	rel := strings.TrimPrefix(manifestsDir, RepositoriesRoot()+"/")
	if rel == manifestsDir || !strings.HasSuffix(rel, "/_manifests") {
		return "", false
	}
	name := strings.TrimSuffix(rel, "/_manifests")
	// No name component is empty or starts with "_" (that is a
	// repository's own folder), so ".../a/_manifests/tags/_manifests",
	// the folder of a valid tag "_manifests", is not a repository
	// "a/_manifests/tags".
	for _, c := range strings.Split(name, "/") {
		if c == "" || strings.HasPrefix(c, "_") {
			return "", false
		}
	}
	return name, true
}
