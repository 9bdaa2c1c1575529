package registryd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/internal/testtools"
	"regctl/pkg/blobcache"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

// countingDriver counts the storage reads a request makes.
type countingDriver struct {
	storage.Driver
	reads atomic.Int64
}

func (c *countingDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	c.reads.Add(1)
	return c.Driver.GetContent(ctx, p)
}

func (c *countingDriver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	c.reads.Add(1)
	return c.Driver.Stat(ctx, p)
}

// cacheNode is one registry node with its own view of the storage.
type cacheNode struct {
	*mfEnv
	srv *Server
	drv *countingDriver
}

// reads runs fn and returns how many storage reads it made.
func (n *cacheNode) reads(fn func()) int64 {
	before := n.drv.reads.Load()
	fn()
	return n.drv.reads.Load() - before
}

func newCacheNodes(t *testing.T, c blobcache.Cache) (a, b *cacheNode) {
	t.Helper()
	first := newMfEnv(t, Options{DeleteEnabled: true})
	mk := func() *cacheNode {
		drv := &countingDriver{Driver: first.fs}
		srv := New(Options{Driver: drv, DeleteEnabled: true, Cache: c})
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		env := *first
		env.srv = hs
		return &cacheNode{mfEnv: &env, srv: srv, drv: drv}
	}
	return mk(), mk()
}

func TestSharedCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	rs := testtools.StartRedis(t)
	rc, err := blobcache.NewRedis(&distconfig.Redis{Addrs: []string{rs.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cache := &blobcache.Guarded{C: rc}
	a, b := newCacheNodes(t, cache)

	body := a.image("app", "one", nil)
	d := a.mustPush("app", "v1", ocispec.MediaTypeImageManifest, body)
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0].Digest
	accept := map[string]string{"Accept": ocispec.MediaTypeImageManifest}

	get := func(n *cacheNode, ref string, want int) {
		t.Helper()
		if r := n.do(http.MethodGet, "/v2/app/manifests/"+ref, accept, nil); r.code != want {
			t.Fatalf("GET manifest %s: %d %s", ref, r.code, r.body)
		} else if want == http.StatusOK && string(r.body) != string(body) {
			t.Fatalf("GET manifest %s: wrong body", ref)
		}
	}
	head := func(n *cacheNode, dg digest.Digest, want int) {
		t.Helper()
		if r := n.do(http.MethodHead, "/v2/app/blobs/"+dg.String(), nil, nil); r.code != want {
			t.Fatalf("HEAD blob: %d, want %d", r.code, want)
		}
	}

	// A fills the cache; B then answers from it.
	get(a, d.String(), http.StatusOK)
	head(a, layer, http.StatusOK)
	if n := b.reads(func() { get(b, d.String(), http.StatusOK) }); n != 0 {
		t.Errorf("GET by digest on B read the storage %d times; want 0 (cached by A)", n)
	}
	if n := b.reads(func() { get(b, "v1", http.StatusOK) }); n != 1 {
		t.Errorf("GET by tag on B read the storage %d times; want 1 (the tag)", n)
	}
	if n := b.reads(func() { head(b, layer, http.StatusOK) }); n != 0 {
		t.Errorf("HEAD blob on B read the storage %d times; want 0", n)
	}

	// Deletes through A are seen by B at once.
	if r := a.do(http.MethodDelete, "/v2/app/blobs/"+layer.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("DELETE blob: %d %s", r.code, r.body)
	}
	head(b, layer, http.StatusNotFound)
	if r := a.do(http.MethodDelete, "/v2/app/manifests/"+d.String(), nil, nil); r.code != http.StatusAccepted {
		t.Fatalf("DELETE manifest: %d %s", r.code, r.body)
	}
	get(b, d.String(), http.StatusNotFound)

	// During maintenance reads do not fill the cache (GC flushes it
	// before the lease ends).
	body2 := a.image("app", "two", nil)
	d2 := a.mustPush("app", "v2", ocispec.MediaTypeImageManifest, body2)
	b.srv.SetMaintenance("garbage collection by test")
	body = body2
	get(b, d2.String(), http.StatusOK)
	if _, ok, _ := rc.Get(t.Context(), blobcache.ManifestKey("app", d2)); ok {
		t.Error("a read during maintenance filled the cache")
	}
	b.srv.ClearMaintenance()
	get(b, d2.String(), http.StatusOK)
	if _, ok, _ := rc.Get(t.Context(), blobcache.ManifestKey("app", d2)); !ok {
		t.Error("a read after maintenance did not fill the cache")
	}

	// Redis down: reads come from the storage, deletes are refused
	// (they could not be invalidated) and delete nothing.
	rs.Process.Stop()
	start := time.Now()
	get(b, d2.String(), http.StatusOK)
	get(b, "v2", http.StatusOK)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("two GETs with Redis down took %v", took)
	}
	r := a.do(http.MethodDelete, "/v2/app/manifests/"+d2.String(), nil, nil)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("DELETE with Redis down: %d %s; want 503", r.code, r.body)
	}
	get(b, d2.String(), http.StatusOK)
	if cache.Stats().Errors == 0 {
		t.Error("no cache error counted")
	}
}
