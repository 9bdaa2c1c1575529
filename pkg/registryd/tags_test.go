package registryd

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type catalogList struct {
	Repositories []string `json:"repositories"`
}

func decodeList[T any](t *testing.T, r mfResp) T {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

func TestTagsList(t *testing.T) {
	e := newMfEnvDefault(t)
	body := e.image("lib/app", "a", nil)
	tags := []string{"v2", "A", "latest", "v1", "_x", "v1.0", "v10"}
	for _, tag := range tags {
		e.mustPush("lib/app", tag, ocispec.MediaTypeImageManifest, body)
	}
	// What a DataSync copy or a stray file leaves in the tags folder is
	// not a tag.
	for _, junk := range []string{"-bad", ".hidden"} {
		if err := os.MkdirAll(filepath.Join(e.root, filepath.FromSlash(storage.TagDir("lib/app", junk)), "current"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sorted := []string{"A", "_x", "latest", "v1", "v1.0", "v10", "v2"}

	all := decodeList[tagList](t, e.do(http.MethodGet, "/v2/lib/app/tags/list", nil, nil))
	if all.Name != "lib/app" || !reflect.DeepEqual(all.Tags, sorted) {
		t.Fatalf("got %+v, want %v", all, sorted)
	}

	for _, tc := range []struct {
		query string
		want  []string
		link  string
	}{
		{"?n=3", sorted[:3], `</v2/lib/app/tags/list?last=latest&n=3>; rel="next"`},
		{"?n=3&last=latest", sorted[3:6], `</v2/lib/app/tags/list?last=v10&n=3>; rel="next"`},
		{"?n=3&last=v10", sorted[6:], ""},
		{"?n=7", sorted, ""},
		{"?n=100", sorted, ""},
		{"?last=v1.0", sorted[5:], ""},
		{"?last=zzz", []string{}, ""},
		{"?last=b&n=2", []string{"latest", "v1"}, `</v2/lib/app/tags/list?last=v1&n=2>; rel="next"`},
		{"?n=0", []string{}, ""},
	} {
		r := e.do(http.MethodGet, "/v2/lib/app/tags/list"+tc.query, nil, nil)
		got := decodeList[tagList](t, r)
		if !reflect.DeepEqual(got.Tags, tc.want) {
			t.Errorf("%s: tags %v, want %v", tc.query, got.Tags, tc.want)
		}
		if link := r.hdr.Get("Link"); link != tc.link {
			t.Errorf("%s: Link %q, want %q", tc.query, link, tc.link)
		}
	}

	// Following the Link headers walks the whole list once.
	var walked []string
	next := "/v2/lib/app/tags/list?n=2"
	for next != "" {
		r := e.do(http.MethodGet, next, nil, nil)
		walked = append(walked, decodeList[tagList](t, r).Tags...)
		next = ""
		if l := r.hdr.Get("Link"); l != "" {
			next = l[1 : len(l)-len(`>; rel="next"`)]
		}
	}
	if !reflect.DeepEqual(walked, sorted) {
		t.Errorf("paging with Link gave %v", walked)
	}

	for _, q := range []string{"?n=-1", "?n=abc", "?n=", "?n=1.5"} {
		wantError(t, e.do(http.MethodGet, "/v2/lib/app/tags/list"+q, nil, nil), http.StatusBadRequest, CodePaginationInvalid)
	}
	wantError(t, e.do(http.MethodGet, "/v2/lib/nope/tags/list", nil, nil), http.StatusNotFound, CodeNameUnknown)
	wantError(t, e.do(http.MethodGet, "/v2/Lib/tags/list", nil, nil), http.StatusBadRequest, CodeNameInvalid)

	// A repository with manifests but no tags lists none, as [] not null.
	untagged := e.image("untagged", "u", nil)
	e.mustPush("untagged", digest.FromBytes(untagged).String(), ocispec.MediaTypeImageManifest, untagged)
	r := e.do(http.MethodGet, "/v2/untagged/tags/list", nil, nil)
	if got := decodeList[tagList](t, r); got.Tags == nil || len(got.Tags) != 0 {
		t.Errorf("untagged repository: %s", r.body)
	}

	// A deleted tag is no longer listed.
	if r := e.do(http.MethodDelete, "/v2/lib/app/manifests/v1", nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d", r.code)
	}
	got := decodeList[tagList](t, e.do(http.MethodGet, "/v2/lib/app/tags/list", nil, nil))
	if want := []string{"A", "_x", "latest", "v1.0", "v10", "v2"}; !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("after delete: %v", got.Tags)
	}
}

func TestCatalog(t *testing.T) {
	e := newMfEnvDefault(t)
	empty := decodeList[catalogList](t, e.do(http.MethodGet, "/v2/_catalog", nil, nil))
	if empty.Repositories == nil || len(empty.Repositories) != 0 {
		t.Fatalf("empty registry: %+v", empty)
	}

	repos := []string{"b", "a", "a/b", "a/b/c", "a-b", "group/sub/project", "z9"}
	for _, repo := range repos {
		e.mustPush(repo, "v1", ocispec.MediaTypeImageManifest, e.image(repo, repo, nil))
	}
	// Blobs alone do not make a repository, nor does an upload.
	e.putBlob("only/layers", ocispec.MediaTypeImageLayerGzip, []byte("x"))
	if err := e.fs.PutContent(context.Background(), storage.UploadStartedAtPath("only/uploads", "u1"), []byte("now")); err != nil {
		t.Fatal(err)
	}
	sorted := []string{"a", "a-b", "a/b", "a/b/c", "b", "group/sub/project", "z9"}

	all := decodeList[catalogList](t, e.do(http.MethodGet, "/v2/_catalog", nil, nil))
	if !reflect.DeepEqual(all.Repositories, sorted) {
		t.Fatalf("catalog %v, want %v", all.Repositories, sorted)
	}
	for _, tc := range []struct {
		query string
		want  []string
		link  string
	}{
		{"?n=2", sorted[:2], `</v2/_catalog?last=a-b&n=2>; rel="next"`},
		{"?n=2&last=a-b", sorted[2:4], `</v2/_catalog?last=a%2Fb%2Fc&n=2>; rel="next"`},
		{"?n=3&last=a%2Fb%2Fc", sorted[4:], ""},
		{"?last=b", sorted[5:], ""},
		{"?n=0", []string{}, ""},
	} {
		r := e.do(http.MethodGet, "/v2/_catalog"+tc.query, nil, nil)
		got := decodeList[catalogList](t, r)
		if !reflect.DeepEqual(got.Repositories, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got.Repositories, tc.want)
		}
		if link := r.hdr.Get("Link"); link != tc.link {
			t.Errorf("%s: Link %q, want %q", tc.query, link, tc.link)
		}
	}
	wantError(t, e.do(http.MethodGet, "/v2/_catalog?n=-5", nil, nil), http.StatusBadRequest, CodePaginationInvalid)
}
