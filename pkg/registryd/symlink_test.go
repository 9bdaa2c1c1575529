package registryd

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// Symbolic links planted in the root are never followed while serving:
// nothing outside the root is served (a blob's data linked to a secret
// is not served under a digest it does not match), listed, or written
// by a push whose path crosses a link.
func TestServeNeverFollowsSymlinks(t *testing.T) {
	logs := &testtools.SyncBuffer{}
	e := newBlobEnv(t, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(logs, nil)) })
	s := testtools.PlantSymlinks(t, e.root)
	ctx := t.Context()
	// good/app links the blobs whose data is outside, as a push would.
	for _, d := range []string{s.SecretBlob, s.OutsideBlob} {
		if err := e.drv.PutContent(ctx, storage.LayerLinkPath("good/app", digest.Digest(d)), []byte(d)); err != nil {
			t.Fatal(err)
		}
	}

	// Reads.
	for _, target := range []string{
		"/v2/good/app/blobs/" + s.SecretBlob,
		"/v2/good/app/blobs/" + s.OutsideBlob,
		"/v2/evil/app/manifests/" + s.Manifest,
		"/v2/evil/app/tags/list",
		"/v2/evil/app/blobs/uploads/" + testtools.SymlinkUploadEvil,
		"/v2/good/app/blobs/uploads/" + testtools.SymlinkUploadGood,
	} {
		for _, m := range []string{"GET", "HEAD"} {
			r := e.do(m, target, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
			if r.code < 400 || bytes.Contains(r.body, []byte(s.Secret)) || bytes.Contains(r.body, []byte("outside the root")) {
				t.Errorf("%s %s: %d %q, want an error", m, target, r.code, r.body)
			}
		}
	}
	if !strings.Contains(logs.String(), storage.ErrSymlink.Error()) {
		t.Errorf("the log does not say why:\n%s", logs)
	}
	if r := e.do("GET", "/v2/_catalog", nil); r.code != http.StatusOK || strings.Contains(string(r.body), "evil") {
		t.Errorf("catalog: %d %s; want it without evil/app", r.code, r.body)
	}

	// Writes whose path crosses a link.
	for _, repo := range []string{"evil/app", "good/app"} {
		if r := e.do("POST", "/v2/"+repo+"/blobs/uploads/", nil); r.code < 400 {
			t.Errorf("upload to %s: %d, want an error", repo, r.code)
		}
		data := []byte("pushed to " + repo)
		if r := e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(data).String(), data); r.code < 400 {
			t.Errorf("monolithic upload to %s: %d, want an error", repo, r.code)
		}
	}
	// A blob whose folder is blobs/sha256/ee, the link.
	var ee []byte
	for i := 0; ; i++ {
		ee = fmt.Appendf(nil, "blob %d", i)
		if digest.FromBytes(ee).Encoded()[:2] == "ee" {
			break
		}
	}
	if r := e.do("POST", "/v2/clean/app/blobs/uploads/?digest="+digest.FromBytes(ee).String(), ee); r.code < 400 {
		t.Errorf("push of an ee… blob: %d, want an error", r.code)
	}
	s.CheckOutside(t)
	s.CheckLinks(t)

	// The registry still works beside the links.
	d := e.push("clean/app", []byte("a layer"))
	e.expect(e.do("GET", "/v2/clean/app/blobs/"+d.String(), nil), http.StatusOK, "")
}
