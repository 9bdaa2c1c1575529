package registryd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/storage"
)

// The memo answers what parsing answers, for bytes it has seen or not,
// and never remembers a failure (each GET of a broken manifest logs it).
func TestMediaTypeMemo(t *testing.T) {
	docs := []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`,
		`{"schemaVersion":2,"manifests":[]}`,
		`{"schemaVersion":2,"manifests":null}`,
		`{"schemaVersion":1}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`,
		`{"schemaVersion":2,"config":{}}`,
		`{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:1","size":1},"layers":[{"mediaType":"l","digest":"sha256:2","size":2}],"subject":{"digest":"sha256:3"}}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"size":"x"}]}`,
		`not json`,
		``,
	}
	var c mediaTypeMemo
	for round := range 3 {
		for _, doc := range docs {
			want, wantErr := ocispec.MediaTypeImageManifest, error(nil)
			if m, err := parseStoredManifest([]byte(doc)); err != nil {
				wantErr = err
			} else {
				want = m.mediaType()
			}
			got, err := c.of([]byte(doc))
			if got != want || (err == nil) != (wantErr == nil) {
				t.Errorf("round %d, %s: got %q, %v; parsing gives %q, %v", round, doc, got, err, want, wantErr)
			}
			var wantRefs []ocispec.Descriptor
			if m, err := parseStoredManifest([]byte(doc)); err == nil {
				wantRefs = m.references()
			}
			gr, _ := json.Marshal(c.references([]byte(doc)))
			wr, _ := json.Marshal(wantRefs)
			if string(gr) != string(wr) {
				t.Errorf("round %d, %s: references %s, parsing gives %s", round, doc, gr, wr)
			}
		}
	}
	if _, ok := c.m[`not json`]; ok {
		t.Error("an unparsable manifest was remembered")
	}
}

// The memo stays within its budget: when full it starts over.
func TestMediaTypeMemoBounded(t *testing.T) {
	var c mediaTypeMemo
	pad := make([]byte, memoMaxBody-200)
	for i := range pad {
		pad[i] = 'x'
	}
	for i := range 2 * memoMaxBytes / memoMaxBody {
		doc, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": fmt.Sprint("t/", i), "pad": string(pad)})
		if len(doc) > memoMaxBody {
			t.Fatalf("test document of %d bytes is over memoMaxBody", len(doc))
		}
		if mt, err := c.of(doc); err != nil || mt != fmt.Sprint("t/", i) {
			t.Fatalf("doc %d: %q, %v", i, mt, err)
		}
		if c.bytes > memoMaxBytes {
			t.Fatalf("memo holds %d bytes, over its %d budget", c.bytes, memoMaxBytes)
		}
	}
	big := make([]byte, memoMaxBody+1)
	copy(big, `{"schemaVersion":2,"mediaType":"big"}`)
	for i := len(`{"schemaVersion":2,"mediaType":"big"}`); i < len(big); i++ {
		big[i] = ' '
	}
	before := len(c.m)
	if mt, err := c.of(big); err != nil || mt != "big" {
		t.Fatalf("big doc: %q, %v", mt, err)
	}
	if len(c.m) != before {
		t.Error("a manifest over memoMaxBody was remembered")
	}
}

// A manifest the memo knows is still gone once deleted, through the API
// or by garbage collection behind the server's back: the memo is asked
// only about bytes just read from storage.
func TestMemoNeverAnswersExistence(t *testing.T) {
	e := newMfEnvDefault(t)
	body := e.image("memo", "a", nil)
	d := e.mustPush("memo", "t", ocispec.MediaTypeImageManifest, body)
	get := func(ref string) mfResp {
		return e.do(http.MethodGet, "/v2/memo/manifests/"+ref, map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	}
	for _, ref := range []string{"t", d.String()} {
		if r := get(ref); r.code != http.StatusOK || r.hdr.Get("Content-Type") != ocispec.MediaTypeImageManifest {
			t.Fatalf("GET %s: %d %q", ref, r.code, r.hdr.Get("Content-Type"))
		}
	}
	if r := e.do(http.MethodDelete, "/v2/memo/manifests/"+d.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	for _, ref := range []string{"t", d.String()} {
		// NAME_UNKNOWN: the repository went with its only manifest.
		wantError(t, get(ref), http.StatusNotFound, CodeNameUnknown)
	}

	// Pushed again, then its data removed as garbage collection would.
	e.mustPush("memo", "t", ocispec.MediaTypeImageManifest, body)
	if r := get("t"); r.code != http.StatusOK {
		t.Fatalf("GET after re-push: %d", r.code)
	}
	if err := os.RemoveAll(filepath.Join(e.root, filepath.FromSlash(storage.BlobDir(d)))); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"t", d.String()} {
		wantError(t, get(ref), http.StatusNotFound, CodeManifestUnknown)
	}
}
