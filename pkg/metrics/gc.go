package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"regctl/pkg/gcreport"
)

// GCReports exports the figures of the last garbage collection, as the
// collector left them in the storage (gcreport), labelled dry_run "true"
// or "false": a dry run never hides the last real run. Nothing is
// exported for a kind that has never run.
type GCReports struct {
	mu   sync.Mutex
	last gcreport.Last
}

// GCReports registers the last-run figures; feed them with Set.
func (m *Metrics) GCReports() *GCReports {
	g := &GCReports{}
	m.reg.MustRegister(g)
	return g
}

// Set replaces the figures with the reports just read.
func (g *GCReports) Set(l gcreport.Last) {
	g.mu.Lock()
	g.last = l
	g.mu.Unlock()
}

func gcDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_gc_last_"+name, help, []string{"dry_run"}, nil)
}

var gcLast = []struct {
	desc *prometheus.Desc
	get  func(*gcreport.Report) float64
}{
	{gcDesc("run_timestamp_seconds", "When the last garbage collection finished (Unix time)."),
		func(r *gcreport.Report) float64 { return float64(r.Finished.UnixNano()) / 1e9 }},
	{gcDesc("run_duration_seconds", "How long the last garbage collection took, waiting for read-only included."),
		func(r *gcreport.Report) float64 { return r.Duration.Seconds() }},
	{gcDesc("run_success", "1 if the last garbage collection succeeded, 0 if it failed."),
		func(r *gcreport.Report) float64 { return b2f(r.Success) }},
	{gcDesc("run_delete_untagged", "1 if the last garbage collection ran with -m (delete untagged manifests)."),
		func(r *gcreport.Report) float64 { return b2f(r.DeleteUntagged) }},
	{gcDesc("manifests_deleted", "Manifests the last garbage collection deleted (a dry run: would delete)."),
		func(r *gcreport.Report) float64 { return float64(r.ManifestsDeleted) }},
	{gcDesc("blobs_deleted", "Blobs the last garbage collection deleted (a dry run: would delete)."),
		func(r *gcreport.Report) float64 { return float64(r.BlobsDeleted) }},
	{gcDesc("layer_links_deleted", "Repository layer links the last garbage collection deleted (a dry run: would delete)."),
		func(r *gcreport.Report) float64 { return float64(r.LayerLinksDeleted) }},
	{gcDesc("bytes_freed", "Bytes of blobs the last garbage collection freed (a dry run: would free)."),
		func(r *gcreport.Report) float64 { return float64(r.BytesFreed) }},
	{gcDesc("problems", "Problems (corrupt links, unparsable manifests, missing blobs) the last garbage collection reported."),
		func(r *gcreport.Report) float64 { return float64(r.Problems) }},
}

var gcLastSuccess = gcDesc("success_timestamp_seconds", "When the last successful garbage collection finished (Unix time).")

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (g *GCReports) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range gcLast {
		ch <- d.desc
	}
	ch <- gcLastSuccess
}

func (g *GCReports) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	l := g.last
	g.mu.Unlock()
	for _, k := range []struct {
		r     *gcreport.Report
		label string
	}{{l.Run, "false"}, {l.DryRun, "true"}} {
		if k.r == nil {
			continue
		}
		for _, d := range gcLast {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, d.get(k.r), k.label)
		}
		if !k.r.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(gcLastSuccess, prometheus.GaugeValue, float64(k.r.LastSuccess.UnixNano())/1e9, k.label)
		}
	}
}
