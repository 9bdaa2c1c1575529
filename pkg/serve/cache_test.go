package serve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/blobcache"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

func TestOpenCache(t *testing.T) {
	cfg := distconfig.Default(t.TempDir())
	c, err := OpenCache(cfg, slog.New(slog.DiscardHandler))
	if err != nil || c != nil {
		t.Fatalf("inmemory: %v, %v; want no cache", c, err)
	}
	cfg.Storage.Cache.BlobDescriptor = "redis"
	if _, err := OpenCache(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "redis.addrs") {
		t.Fatalf("redis without a section: %v", err)
	}
}

func TestFlushAfter(t *testing.T) {
	t.Parallel()
	rs := testtools.StartRedis(t)
	cfg := distconfig.Default(t.TempDir())
	cfg.Storage.Cache.BlobDescriptor = "redis"
	cfg.Redis = &distconfig.Redis{Addrs: []string{rs.Addr}}
	c, err := OpenCache(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k := blobcache.GlobalKey(digest.FromString("gone"))
	c.Set(ctx, k, blobcache.Descriptor{Size: 1})

	boom := errors.New("gc failed half-way")
	n, err := FlushAfter(ctx, c, func(context.Context) error { return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("FlushAfter = %d, %v; want 1 key and the job's error", n, err)
	}
	if _, ok, _ := c.Get(ctx, k); ok {
		t.Fatal("entry survived the flush")
	}

	rs.Process.Stop()
	ran := false
	_, err = FlushAfter(ctx, c, func(context.Context) error { ran = true; return nil })
	if ran || err == nil || !strings.Contains(err.Error(), "nothing was done") {
		t.Fatalf("Redis down: ran=%v err=%v; want the job not run", ran, err)
	}
}

// TestCacheCountersInMetrics serves blob HEADs through a daemon with the
// Redis cache and metrics on: a first HEAD misses and fills the cache,
// the next ones hit, and /metrics counts them; with Redis gone, lookups
// count as errors and misses while the blob is still served.
func TestCacheCountersInMetrics(t *testing.T) {
	rs := testtools.StartRedis(t)
	root := t.TempDir()
	td := startDaemonWith(t, root, time.Second, func(c *distconfig.Config) {
		c.Storage.Cache.BlobDescriptor = "redis"
		c.Redis = &distconfig.Redis{Addrs: []string{rs.Addr}}
		c.HTTP.Debug.Addr = "127.0.0.1:0"
		c.HTTP.Debug.Prometheus.Enabled = true
	})
	blob := []byte("cached blob")
	d := digest.FromBytes(blob)
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := drv.PutContent(ctx, storage.BlobDataPath(d), blob); err != nil {
		t.Fatal(err)
	}
	if err := drv.PutContent(ctx, storage.LayerLinkPath("team/app", d), []byte(d.String())); err != nil {
		t.Fatal(err)
	}
	counters := func() map[string]float64 {
		fams, err := td.metrics.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "registry_storage_cache_") {
				out[f.GetName()] = f.Metric[0].GetCounter().GetValue()
			}
		}
		return out
	}
	if c := counters(); len(c) != 5 || c["registry_storage_cache_requests_total"] != 0 {
		t.Fatalf("before any request: %v", c)
	}
	for range 3 {
		if code, msg := td.request(t, http.MethodHead, "/v2/team/app/blobs/"+d.String(), nil); code != 200 {
			t.Fatalf("HEAD: %d %s", code, msg)
		}
	}
	c := counters()
	if c["registry_storage_cache_hits_total"] < 2 || c["registry_storage_cache_misses_total"] < 1 ||
		c["registry_storage_cache_requests_total"] != c["registry_storage_cache_hits_total"]+c["registry_storage_cache_misses_total"] ||
		c["registry_storage_cache_errors_total"] != 0 {
		t.Errorf("after a miss and two hits: %v", c)
	}
	rs.Process.Stop()
	if code, msg := td.request(t, http.MethodHead, "/v2/team/app/blobs/"+d.String(), nil); code != 200 {
		t.Fatalf("HEAD with redis gone: %d %s", code, msg)
	}
	after := counters()
	if after["registry_storage_cache_errors_total"] < 1 || after["registry_storage_cache_misses_total"] <= c["registry_storage_cache_misses_total"] {
		t.Errorf("with redis gone: %v, before %v", after, c)
	}
}
