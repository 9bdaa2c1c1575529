package storage_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// The digests of "hello", spelled out so the table does not trust
// go-digest to build the paths it checks.
const (
	hex256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	hex512 = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
)

func TestLayoutPaths(t *testing.T) {
	d256 := digest.Digest("sha256:" + hex256)
	d512 := digest.Digest("sha512:" + hex512)
	for _, d := range []digest.Digest{d256, d512} {
		if err := d.Validate(); err != nil {
			t.Fatalf("fixture %s: %v", d, err)
		}
	}
	if digest.SHA256.FromString("hello") != d256 || digest.SHA512.FromString("hello") != d512 {
		t.Fatal("fixture digests are not those of \"hello\"")
	}
	const v2 = "/docker/registry/v2"
	const repos = v2 + "/repositories"
	tests := []struct {
		name, got, want string
	}{
		{"Root", storage.Root, v2},
		{"BlobsRoot", storage.BlobsRoot(), v2 + "/blobs"},
		{"BlobDir sha256", storage.BlobDir(d256), v2 + "/blobs/sha256/2c/" + hex256},
		{"BlobDataPath sha256", storage.BlobDataPath(d256), v2 + "/blobs/sha256/2c/" + hex256 + "/data"},
		{"BlobDir sha512", storage.BlobDir(d512), v2 + "/blobs/sha512/9b/" + hex512},
		{"BlobDataPath sha512", storage.BlobDataPath(d512), v2 + "/blobs/sha512/9b/" + hex512 + "/data"},
		{"RepositoriesRoot", storage.RepositoriesRoot(), repos},
		{"RepositoryDir", storage.RepositoryDir("group/sub/app"), repos + "/group/sub/app"},
		{"LayersDir", storage.LayersDir("app"), repos + "/app/_layers"},
		{"LayerLinkPath sha256", storage.LayerLinkPath("group/app", d256), repos + "/group/app/_layers/sha256/" + hex256 + "/link"},
		{"LayerLinkPath sha512", storage.LayerLinkPath("group/app", d512), repos + "/group/app/_layers/sha512/" + hex512 + "/link"},
		{"ManifestsDir", storage.ManifestsDir("group/app"), repos + "/group/app/_manifests"},
		{"ManifestRevisionsDir", storage.ManifestRevisionsDir("app"), repos + "/app/_manifests/revisions"},
		{"ManifestRevisionDir sha256", storage.ManifestRevisionDir("app", d256), repos + "/app/_manifests/revisions/sha256/" + hex256},
		{"ManifestRevisionLinkPath sha256", storage.ManifestRevisionLinkPath("app", d256), repos + "/app/_manifests/revisions/sha256/" + hex256 + "/link"},
		{"ManifestRevisionLinkPath sha512", storage.ManifestRevisionLinkPath("app", d512), repos + "/app/_manifests/revisions/sha512/" + hex512 + "/link"},
		{"TagsDir", storage.TagsDir("group/app"), repos + "/group/app/_manifests/tags"},
		{"TagDir", storage.TagDir("group/app", "v1.0"), repos + "/group/app/_manifests/tags/v1.0"},
		{"TagCurrentLinkPath", storage.TagCurrentLinkPath("group/app", "latest"), repos + "/group/app/_manifests/tags/latest/current/link"},
		{"TagIndexDir", storage.TagIndexDir("app", "latest"), repos + "/app/_manifests/tags/latest/index"},
		{"TagIndexEntryLinkPath sha256", storage.TagIndexEntryLinkPath("app", "latest", d256), repos + "/app/_manifests/tags/latest/index/sha256/" + hex256 + "/link"},
		{"TagIndexEntryLinkPath sha512", storage.TagIndexEntryLinkPath("app", "latest", d512), repos + "/app/_manifests/tags/latest/index/sha512/" + hex512 + "/link"},
		{"UploadsDir", storage.UploadsDir("group/app"), repos + "/group/app/_uploads"},
		{"UploadDir", storage.UploadDir("app", "3f6c-uuid"), repos + "/app/_uploads/3f6c-uuid"},
		{"UploadDataPath", storage.UploadDataPath("app", "3f6c-uuid"), repos + "/app/_uploads/3f6c-uuid/data"},
		{"UploadStartedAtPath", storage.UploadStartedAtPath("app", "3f6c-uuid"), repos + "/app/_uploads/3f6c-uuid/startedat"},
		{"UploadHashStatePath sha256", storage.UploadHashStatePath("app", "u", digest.SHA256, 0), repos + "/app/_uploads/u/hashstates/sha256/0"},
		{"UploadHashStatePath sha512", storage.UploadHashStatePath("app", "u", digest.SHA512, 10485760), repos + "/app/_uploads/u/hashstates/sha512/10485760"},
		{"RegctlDir", storage.RegctlDir("app"), repos + "/app/_regctl"},
		{"ReferrersDir", storage.ReferrersDir("app", d256), repos + "/app/_regctl/referrers/sha256/" + hex256},
		{"ReferrerLinkPath", storage.ReferrerLinkPath("app", d256, d512), repos + "/app/_regctl/referrers/sha256/" + hex256 + "/sha512/" + hex512 + "/link"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
		if err := storage.CheckPath(tc.got); err != nil {
			t.Errorf("%s: not a valid driver path: %v", tc.name, err)
		}
	}
}

func TestRepositoryName(t *testing.T) {
	const repos = "/docker/registry/v2/repositories"
	tests := []struct {
		path string
		name string
		ok   bool
	}{
		{repos + "/app/_manifests", "app", true},
		{repos + "/group/sub/app/_manifests", "group/sub/app", true},
		{repos + "/my-app.v2/_manifests", "my-app.v2", true},
		{repos + "/app", "", false},
		{repos + "/app/_layers", "", false},
		{repos + "/app/_uploads", "", false},
		{repos + "/app/_manifests/", "", false},
		{repos + "/app/_manifests/tags", "", false},
		{repos + "/_manifests", "", false},
		{repos + "//_manifests", "", false},
		{repos + "/a//b/_manifests", "", false},
		{repos, "", false},
		{"/elsewhere/repositories/app/_manifests", "", false},
		{"/docker/registry/v2/repositoriesx/app/_manifests", "", false},
		{"docker/registry/v2/repositories/app/_manifests", "", false},
		// A tag may be named "_manifests": its folder is no repository.
		{storage.TagDir("app", "_manifests"), "", false},
		{storage.ManifestRevisionsDir("app") + "/_manifests", "", false},
	}
	for _, tc := range tests {
		name, ok := storage.RepositoryName(tc.path)
		if name != tc.name || ok != tc.ok {
			t.Errorf("RepositoryName(%q) = %q, %v; want %q, %v", tc.path, name, ok, tc.name, tc.ok)
		}
	}
	for _, n := range []string{"a", "group/app", "g/s/t/u/v"} {
		if got, ok := storage.RepositoryName(storage.ManifestsDir(n)); !ok || got != n {
			t.Errorf("RepositoryName(ManifestsDir(%q)) = %q, %v", n, got, ok)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/b.c/d-e_f", "/v1..2", "/.hidden", "/a/..b/c.."} {
		if err := storage.CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "a", "a/b", "//", "/a//b", "/a/", "/.", "/..", "/a/./b", "/a/../b", "/a\x00"} {
		if err := storage.CheckPath(p); err == nil {
			t.Errorf("CheckPath(%q) accepted", p)
		}
	}
}
