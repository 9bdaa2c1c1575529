// Package metrics is the registry daemon's Prometheus metrics, served on
// the debug listener when http.debug.prometheus.enabled: HTTP requests
// by route, method and status; storage operation latencies; the
// notification queues; and maintenance (garbage collection) windows.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"regctl/pkg/notify"
)

const namespace = "registry"

// Metrics holds the daemon's collectors in a registry of its own (no
// global state, so tests and several daemons in one process each get
// theirs).
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	storageOps *prometheus.HistogramVec
}

// New makes the collectors, with Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served by the registry API, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve registry API requests, by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "code"}),
		storageOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "storage", Name: "action_seconds",
			Help:    "Time of storage driver operations, by driver, action and outcome (ok, not_found, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"driver", "action", "outcome"}),
	}
	m.reg.MustRegister(m.requests, m.durations, m.storageOps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format (or OpenMetrics
// on request).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Registry is the collectors' registry, for tests and further
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts a finished API request (registryd.Observer).
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.durations.WithLabelValues(route, method, code).Observe(d.Seconds())
}

// Notifications exports the endpoints' queue figures, read at each
// scrape from stats.
func (m *Metrics) Notifications(stats func() []notify.Stats) {
	m.reg.MustRegister(&notifyCollector{stats: stats})
}

var (
	notifyPending = prometheus.NewDesc(namespace+"_notifications_pending",
		"Events queued for an endpoint and not delivered yet.", []string{"endpoint"}, nil)
	notifyCounters = []struct {
		desc *prometheus.Desc
		get  func(notify.Stats) int64
	}{
		{prometheus.NewDesc(namespace+"_notifications_events_total", "Events accepted into an endpoint's queue.", []string{"endpoint"}, nil),
			func(s notify.Stats) int64 { return s.Events }},
		{prometheus.NewDesc(namespace+"_notifications_successes_total", "Events delivered (the endpoint answered 2xx).", []string{"endpoint"}, nil),
			func(s notify.Stats) int64 { return s.Successes }},
		{prometheus.NewDesc(namespace+"_notifications_failures_total", "Delivery attempts answered with a non-2xx status.", []string{"endpoint"}, nil),
			func(s notify.Stats) int64 { return s.Failures }},
		{prometheus.NewDesc(namespace+"_notifications_errors_total", "Delivery attempts without an answer (refused, timed out).", []string{"endpoint"}, nil),
			func(s notify.Stats) int64 { return s.Errors }},
		{prometheus.NewDesc(namespace+"_notifications_dropped_total", "Events dropped: queue or hand-off full, unreadable queue segment.", []string{"endpoint"}, nil),
			func(s notify.Stats) int64 { return s.Dropped }},
	}
)

type notifyCollector struct{ stats func() []notify.Stats }

func (c *notifyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- notifyPending
	for _, nc := range notifyCounters {
		ch <- nc.desc
	}
}

func (c *notifyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(notifyPending, prometheus.GaugeValue, float64(s.Pending), s.Name)
		for _, nc := range notifyCounters {
			ch <- prometheus.MustNewConstMetric(nc.desc, prometheus.CounterValue, float64(nc.get(s)), s.Name)
		}
	}
}

// Maintenance exports whether this node refuses writes for a maintenance
// job (a cluster-wide garbage collection, a storage cutover) and how
// often and how long it has, from the transitions Observe reports.
type Maintenance struct {
	active  prometheus.Gauge
	windows prometheus.Counter
	seconds prometheus.Counter
	since   time.Time
}

// Maintenance registers the maintenance figures.
func (m *Metrics) Maintenance() *Maintenance {
	mt := &Maintenance{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "gc", Name: "maintenance_active",
			Help: "1 while this node refuses writes for a maintenance job (garbage collection, storage cutover)."}),
		windows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gc", Name: "maintenance_windows_total",
			Help: "Maintenance windows (garbage collections, cutovers) this node has entered."}),
		seconds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gc", Name: "maintenance_seconds_total",
			Help: "Seconds this node has refused writes for maintenance windows that ended."}),
	}
	m.reg.MustRegister(mt.active, mt.windows, mt.seconds)
	return mt
}

// Observe records the maintenance state as polled: a change from off to
// on opens a window, on to off closes it.
func (mt *Maintenance) Observe(on bool, now time.Time) {
	switch {
	case on && mt.since.IsZero():
		mt.since = now
		mt.active.Set(1)
		mt.windows.Inc()
	case !on && !mt.since.IsZero():
		mt.seconds.Add(now.Sub(mt.since).Seconds())
		mt.since = time.Time{}
		mt.active.Set(0)
	}
}
