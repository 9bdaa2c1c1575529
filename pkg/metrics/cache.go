package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"regctl/pkg/blobcache"
)

// The shared blob descriptor cache's counters, under the names CNCF
// Distribution gives its cache's (registry_storage_cache_requests_total,
// _hits_total, _errors_total), with misses and bypassed lookups besides.
var cacheCounters = []struct {
	desc *prometheus.Desc
	get  func(blobcache.Stats) uint64
}{
	{prometheus.NewDesc(namespace+"_storage_cache_requests_total", "Lookups in the blob descriptor cache (hits and misses).", nil, nil),
		func(s blobcache.Stats) uint64 { return s.Hits + s.Misses }},
	{prometheus.NewDesc(namespace+"_storage_cache_hits_total", "Lookups the blob descriptor cache answered.", nil, nil),
		func(s blobcache.Stats) uint64 { return s.Hits }},
	{prometheus.NewDesc(namespace+"_storage_cache_misses_total", "Lookups that went to the storage: not cached, cache failing or bypassed.", nil, nil),
		func(s blobcache.Stats) uint64 { return s.Misses }},
	{prometheus.NewDesc(namespace+"_storage_cache_errors_total", "Calls to the blob descriptor cache that failed (Redis down, timed out).", nil, nil),
		func(s blobcache.Stats) uint64 { return s.Errors }},
	{prometheus.NewDesc(namespace+"_storage_cache_bypassed_total", "Calls not sent to the cache because it failed shortly before.", nil, nil),
		func(s blobcache.Stats) uint64 { return s.Bypassed }},
}

type cacheCollector struct{ stats func() blobcache.Stats }

// BlobCache exports the cache's counters, read at each scrape from stats.
func (m *Metrics) BlobCache(stats func() blobcache.Stats) {
	m.reg.MustRegister(&cacheCollector{stats: stats})
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, cc := range cacheCounters {
		ch <- cc.desc
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, cc := range cacheCounters {
		ch <- prometheus.MustNewConstMetric(cc.desc, prometheus.CounterValue, float64(cc.get(s)))
	}
}
