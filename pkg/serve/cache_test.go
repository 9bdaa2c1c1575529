package serve

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

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
