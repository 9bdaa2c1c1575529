package integration

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"regctl/internal/testtools"
)

// checkReadOnlyRefusal checks one answer of a write in read-only mode:
// 405, JSON, an OCI error saying why.
func checkReadOnlyRefusal(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("%s: %s %s, want 405", what, resp.Status, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	e := decodeOCIError(t, body)
	if e.Code != "UNSUPPORTED" || !strings.Contains(e.Message, "read-only maintenance") {
		t.Errorf("%s: error %+v, want UNSUPPORTED mentioning read-only maintenance", what, e)
	}
}

// TestServeReadOnly starts regctl serve with
// storage.maintenance.readonly.enabled on a root with content and an
// upload in progress: every write is refused with a JSON 405 (not
// Distribution's plain-text "Method not allowed"), every read works, and
// the storage does not change.
func TestServeReadOnly(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	cfgPath := filepath.Join(dir, "config.yml")
	addr := testtools.FreeAddr(t)
	serveCfg{Addr: addr, Root: root}.write(t, cfgPath)
	p := startServeT(t, cfgPath, addr)

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, addr+"/ro/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	imgDigest, _ := img.Digest()
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()
	// An upload left open, to PATCH, PUT and DELETE in read-only mode.
	resp, _ := do(t, http.MethodPost, addr, "/v2/ro/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	upload := strings.TrimPrefix(resp.Header.Get("Location"), "http://"+addr)
	withQuery := func(u, q string) string {
		if strings.Contains(u, "?") {
			return u + "&" + q
		}
		return u + "?" + q
	}
	closeClientConns()
	p.Stop()

	addr = testtools.FreeAddr(t)
	serveCfg{Addr: addr, Root: root, ReadOnly: true}.write(t, cfgPath)
	startServeT(t, cfgPath, addr)
	before := treeSnapshot(t, root)

	chunk := []byte("some bytes")
	manifest, _ := img.RawManifest()
	mt, _ := img.MediaType()
	for _, w := range []struct {
		what, method, path string
		body               []byte
		header             map[string]string
		allow              string // the route's read methods
	}{
		{"POST upload", http.MethodPost, "/v2/ro/app/blobs/uploads/", nil, nil, ""},
		{"POST monolithic upload", http.MethodPost, "/v2/ro/app/blobs/uploads/?digest=" + sha256Digest(chunk), chunk,
			map[string]string{"Content-Type": "application/octet-stream"}, ""},
		{"POST mount", http.MethodPost, "/v2/ro/other/blobs/uploads/?mount=" + layerDigest.String() + "&from=ro/app", nil, nil, ""},
		{"PATCH upload", http.MethodPatch, upload, chunk, map[string]string{"Content-Type": "application/octet-stream"}, "GET"},
		{"PUT upload", http.MethodPut, withQuery(upload, "digest="+sha256Digest(chunk)), chunk,
			map[string]string{"Content-Type": "application/octet-stream"}, "GET"},
		{"DELETE upload", http.MethodDelete, upload, nil, nil, "GET"},
		{"PUT manifest", http.MethodPut, "/v2/ro/app/manifests/v2", manifest, map[string]string{"Content-Type": string(mt)}, "GET, HEAD"},
		{"DELETE manifest", http.MethodDelete, "/v2/ro/app/manifests/" + imgDigest.String(), nil, nil, "GET, HEAD"},
		{"DELETE tag", http.MethodDelete, "/v2/ro/app/manifests/v1", nil, nil, "GET, HEAD"},
		{"DELETE blob", http.MethodDelete, "/v2/ro/app/blobs/" + layerDigest.String(), nil, nil, "GET, HEAD"},
	} {
		resp, body := do(t, w.method, addr, w.path, w.body, w.header)
		checkReadOnlyRefusal(t, w.what, resp, body)
		// RFC 9110: a 405 lists what the route allows now, even nothing.
		if vs, ok := resp.Header["Allow"]; !ok || strings.Join(vs, ", ") != w.allow {
			t.Errorf("%s: Allow %q (sent: %v), want %q", w.what, vs, ok, w.allow)
		}
	}

	// go-containerregistry sees the 405 as a transport error.
	other, _ := random.Image(256, 1)
	err = remote.Write(mustRef(t, addr+"/ro/app:v3"), other)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("push in read-only mode: %v, want a 405 transport error", err)
	}

	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v2/"},
		{http.MethodGet, "/v2/_catalog"},
		{http.MethodGet, "/v2/ro/app/tags/list"},
		{http.MethodGet, "/v2/ro/app/manifests/v1"},
		{http.MethodHead, "/v2/ro/app/manifests/v1"},
		{http.MethodGet, "/v2/ro/app/manifests/" + imgDigest.String()},
		{http.MethodHead, "/v2/ro/app/blobs/" + layerDigest.String()},
		{http.MethodGet, "/v2/ro/app/blobs/" + layerDigest.String()},
		{http.MethodGet, "/v2/ro/app/referrers/" + imgDigest.String()},
	} {
		resp, body := do(t, r.method, addr, r.path, nil,
			map[string]string{"Accept": string(types.OCIManifestSchema1) + "," + string(types.DockerManifestSchema2)})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s in read-only mode: %s %s", r.method, r.path, resp.Status, body)
		}
	}
	// The upload left open is still there, unchanged.
	if resp, body := do(t, http.MethodGet, addr, upload, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET upload status in read-only mode: %s %s", resp.Status, body)
	}
	pulled, err := remote.Image(mustRef(t, addr+"/ro/app:v1"))
	if err == nil {
		err = verifyImage(pulled)
	}
	if err != nil {
		t.Errorf("pull in read-only mode: %v", err)
	}
	if d := diffSnapshots(before, treeSnapshot(t, root)); len(d) > 0 {
		t.Errorf("read-only mode changed the storage: %v", d)
	}
}

// TestServeSIGHUPReadOnlyFlip switches read-only mode and the log level
// with SIGHUP while a 64 MiB blob is being pulled slowly: new writes are
// refused within moments, the pull completes intact, and a second SIGHUP
// reopens pushes.
func TestServeSIGHUPReadOnlyFlip(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	cfgPath := filepath.Join(dir, "config.yml")
	addr := testtools.FreeAddr(t)
	cfg := serveCfg{Addr: addr, Root: root, Level: "warn"}
	cfg.write(t, cfgPath)
	p := startServeT(t, cfgPath, addr)

	big := randomBytes(t, 64<<20)
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), static.NewLayer(big, types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, addr+"/big/blob:v1"), img); err != nil {
		t.Fatalf("push 64 MiB image: %v", err)
	}
	bigDigest := sha256Digest(big)
	big = nil
	if strings.Contains(p.Output(), "blob uploaded") {
		t.Errorf("info logs shown at level warn:\n%s", p.Output())
	}

	pull := startSlowPull(t, addr, "big/blob", bigDigest)
	pull.readSlowly(16, 5*time.Millisecond)

	hup := func() {
		t.Helper()
		if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	postStatus := func() int {
		resp, _ := do(t, http.MethodPost, addr, "/v2/big/other/blobs/uploads/", nil, nil)
		return resp.StatusCode
	}

	// Read-only on, log level info.
	cfg.ReadOnly, cfg.Level = true, "info"
	cfg.write(t, cfgPath)
	hup()
	waitFor(t, 3*time.Second, "pushes to be refused after SIGHUP", func() bool {
		pull.readSlowly(2, 5*time.Millisecond)
		return postStatus() == http.StatusMethodNotAllowed
	})
	if pull.n >= pull.total {
		t.Fatalf("the pull finished (%d bytes) before the flip; it should span it", pull.n)
	}
	t.Logf("read-only after SIGHUP with %d of %d bytes of the pull read", pull.n, pull.total)
	small, _ := random.Image(256, 1)
	var te *transport.Error
	if err := remote.Write(mustRef(t, addr+"/big/small:v1"), small); !errors.As(err, &te) || te.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("push in read-only mode: %v, want 405", err)
	}
	waitFor(t, 3*time.Second, "the log level change in the log", func() bool {
		return strings.Contains(p.Output(), "log level changed") && strings.Contains(p.Output(), "level=info")
	})

	// Reads still work, the slow pull included.
	pull.readSlowly(16, 2*time.Millisecond)
	got, err := pull.finish()
	if err != nil || got != bigDigest {
		t.Fatalf("slow pull across the flip: digest %s (%v), want %s", got, err, bigDigest)
	}

	// A config that does not parse is reported and the running config kept.
	if err := writeFile(cfgPath, "version: 0.1\nstorage: [\n"); err != nil {
		t.Fatal(err)
	}
	hup()
	waitFor(t, 3*time.Second, "the failed reload in the log", func() bool {
		return strings.Contains(p.Output(), "reload failed")
	})
	if s := postStatus(); s != http.StatusMethodNotAllowed {
		t.Errorf("after a failed reload: POST %d, want 405 (config kept)", s)
	}

	// Read-only off again.
	cfg.ReadOnly = false
	cfg.write(t, cfgPath)
	hup()
	waitFor(t, 3*time.Second, "pushes to be accepted after the second SIGHUP", func() bool {
		return postStatus() == http.StatusAccepted
	})
	if err := remote.Write(mustRef(t, addr+"/big/small:v1"), small); err != nil {
		t.Errorf("push after read-only ended: %v", err)
	}
	out := p.Output()
	for _, want := range []string{"read-only mode changed", "read_only=false", "blob uploaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q (info level after the reload):\n%s", want, out)
		}
	}
}
