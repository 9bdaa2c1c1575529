package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"regctl/internal/testtools"
)

// TestServeRejectsBadNames sends repository names that are invalid, or
// that would reach outside repositories/ if used as paths, through every
// kind of endpoint of the real server. Each answer is 400 NAME_INVALID
// (or 404 when the path is no API route, or a sibling code for a bad tag,
// digest or upload id), and nothing in the storage root or beside it
// changes.
func TestServeRejectsBadNames(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	addr := testtools.FreeAddr(t)
	cfgPath := filepath.Join(dir, "config.yml")
	serveCfg{Addr: addr, Root: root}.write(t, cfgPath)
	startServeT(t, cfgPath, addr)

	// Something real to aim at: a blob and a tag in ok/app.
	blob := []byte("a blob to aim at")
	d := pushBlob(t, addr, "ok/app", blob)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[{"mediaType":"application/octet-stream","digest":"` + d + `","size":` + strconv.Itoa(len(blob)) + `}]}`)
	pushBlob(t, addr, "ok/app", []byte("{}"))
	if resp, body := do(t, http.MethodPut, addr, "/v2/ok/app/manifests/v1", manifest,
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest: %s %s", resp.Status, body)
	}
	// A file outside the root a traversal would hit.
	if err := os.WriteFile(filepath.Join(dir, "outside"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeSnapshot(t, dir)

	long := strings.Repeat("a", 256)
	names := []string{
		"..",
		"../..",
		"ok/../../../outside",
		"ok/app/../../..",
		"%2e%2e",
		"%2e%2e/%2e%2e/outside",
		"ok%2f..%2f..",
		"ok/%2e%2e/app",
		"/ok/app",
		"//ok/app",
		"ok//app",
		"ok/app/",
		"./ok/app",
		"ok/./app",
		"OK/App",
		"ok/App",
		long,
		strings.Repeat("abcdefg/", 32) + "a", // 257 characters in short parts
		"ok/_layers",
		"ok/app/_manifests",
		"-ok/app",
		"ok/app-",
		"ok/a..b",
		"ok/app%00",
		"ok\\app",
	}
	type endpoint struct {
		method, suffix string
		body           []byte
	}
	endpoints := []endpoint{
		{http.MethodGet, "/tags/list", nil},
		{http.MethodGet, "/manifests/v1", nil},
		{http.MethodHead, "/manifests/v1", nil},
		{http.MethodPut, "/manifests/v1", manifest},
		{http.MethodDelete, "/manifests/v1", nil},
		{http.MethodGet, "/blobs/" + d, nil},
		{http.MethodDelete, "/blobs/" + d, nil},
		{http.MethodPost, "/blobs/uploads/", nil},
		{http.MethodPost, "/blobs/uploads/?digest=" + d, blob},
		{http.MethodPost, "/blobs/uploads/?mount=" + d + "&from=ok/app", nil},
		{http.MethodPatch, "/blobs/uploads/3f1e8c52-6a1b-4c2d-9e3f-0a1b2c3d4e5f", blob},
		{http.MethodGet, "/referrers/" + d, nil},
	}
	for _, n := range names {
		for _, e := range endpoints {
			path := "/v2/" + n + e.suffix
			resp, body := do(t, e.method, addr, path, e.body, map[string]string{"Content-Type": "application/octet-stream"})
			switch resp.StatusCode {
			case http.StatusBadRequest:
				if e.method != http.MethodHead {
					if c := decodeOCIError(t, body).Code; c != "NAME_INVALID" {
						t.Errorf("%s %s: 400 %s, want NAME_INVALID", e.method, path, c)
					}
				}
			case http.StatusNotFound:
				// Only for paths that are no route at all.
				if e.method != http.MethodHead && decodeOCIError(t, body).Code != "NAME_UNKNOWN" {
					t.Errorf("%s %s: 404 %s", e.method, path, body)
				}
			default:
				t.Errorf("%s %s: %s %s, want 400 NAME_INVALID", e.method, path, resp.Status, body)
			}
		}
	}

	// Bad names in other places: the mount source, tags, digests and
	// upload ids of a valid repository.
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v2/ok/app/blobs/uploads/?mount=" + d + "&from=..%2F..%2Foutside", http.StatusBadRequest},
		{http.MethodGet, "/v2/ok/app/manifests/..%2F..%2F..%2Foutside", http.StatusBadRequest},
		{http.MethodPut, "/v2/ok/app/manifests/..", http.StatusBadRequest},
		{http.MethodGet, "/v2/ok/app/blobs/sha256:..%2F..%2Foutside", http.StatusBadRequest},
		{http.MethodDelete, "/v2/ok/app/blobs/uploads/..%2F..%2F_layers", http.StatusNotFound},
		{http.MethodPatch, "/v2/ok/app/blobs/uploads/..%2F..%2F..%2F..%2Foutside", http.StatusNotFound},
		{http.MethodGet, "/v2/ok/app/blobs/uploads/%2e%2e", http.StatusNotFound},
		{http.MethodGet, "/v2/../../outside", http.StatusNotFound},
		{http.MethodGet, "/v2/ok/app", http.StatusNotFound},
		{http.MethodGet, "/v2/ok/app/manifests/", http.StatusNotFound},
	} {
		resp, body := do(t, r.method, addr, r.path, []byte("x"), nil)
		if resp.StatusCode != r.want {
			t.Errorf("%s %s: %s %s, want %d", r.method, r.path, resp.Status, body, r.want)
		}
	}

	if diff := diffSnapshots(before, treeSnapshot(t, dir)); len(diff) > 0 {
		sort.Strings(diff)
		t.Errorf("bad names changed the files (want no change at all):\n%s", strings.Join(diff, "\n"))
	}

	// The longest valid name, 255 characters, works.
	longest := strings.Repeat("abcdefg/", 31) + strings.Repeat("b", 7)
	if len(longest) != 255 {
		t.Fatalf("test name is %d characters", len(longest))
	}
	pushBlob(t, addr, longest, blob)
	if resp, body := do(t, http.MethodGet, addr, "/v2/"+longest+"/blobs/"+d, nil, nil); resp.StatusCode != http.StatusOK || string(body) != string(blob) {
		t.Errorf("255-character name: %s", resp.Status)
	}
}
