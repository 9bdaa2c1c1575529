package metrics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"regctl/pkg/notify"
	"regctl/pkg/registryd"
	"regctl/pkg/storage"
	"regctl/pkg/storage/drivertest"
)

func TestTimedFilesystemIsADriver(t *testing.T) {
	m := New()
	drivertest.Run(t, func(t *testing.T) storage.Driver {
		fs, err := storage.NewFilesystem(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d := m.Driver(fs)
		if _, ok := d.(*timed); !ok {
			t.Fatalf("filesystem driver not timed: %T", d)
		}
		return d
	})
}

// scrape parses the metrics page as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("scrape: %d", w.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, w.Body.String())
	}
	return fams
}

// value finds the sample of family name with exactly these labels: a
// counter's or gauge's value, a histogram's count.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func TestCountersMoveWithTraffic(t *testing.T) {
	m := New()
	fs, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stats := []notify.Stats{{Name: "gitlab", Pending: 4, Events: 9, Successes: 5, Dropped: 2}}
	m.Notifications(func() []notify.Stats { return stats })
	mt := m.Maintenance()
	srv := httptest.NewServer(registryd.New(registryd.Options{Driver: m.Driver(fs), Observer: m, DeleteEnabled: true}))
	defer srv.Close()

	blob := []byte("some blob")
	sum := sha256.Sum256(blob)
	d := "sha256:" + hex.EncodeToString(sum[:])
	before := scrape(t, m.Handler())
	res, err := http.Post(srv.URL+"/v2/team/app/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(blob))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("push: %v %v", res, err)
	}
	for range 3 {
		res, err := http.Get(srv.URL + "/v2/team/app/blobs/" + d)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("pull: %v %v", res, err)
		}
		res.Body.Close()
	}
	http.Get(srv.URL + "/v2/team/app/blobs/sha256:" + hex.EncodeToString(make([]byte, 32)))
	mt.Observe(true, time.Now().Add(-2*time.Second))
	mt.Observe(false, time.Now())
	after := scrape(t, m.Handler())

	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"registry_http_requests_total", map[string]string{"route": "blob", "method": "GET", "code": "200"}, 3},
		{"registry_http_requests_total", map[string]string{"route": "blob", "method": "GET", "code": "404"}, 1},
		{"registry_http_requests_total", map[string]string{"route": "blob_upload", "method": "POST", "code": "201"}, 1},
		{"registry_http_request_duration_seconds", map[string]string{"route": "blob", "method": "GET", "code": "200"}, 3},
		{"registry_storage_action_seconds", map[string]string{"driver": "filesystem", "action": "Open", "outcome": "ok"}, 3},
		{"registry_gc_maintenance_windows_total", nil, 1},
	} {
		got := value(after, c.name, c.labels) - value(before, c.name, c.labels)
		if got != c.delta {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.delta)
		}
	}
	if s := value(after, "registry_gc_maintenance_seconds_total", nil); s < 1.9 {
		t.Errorf("maintenance seconds = %v, want about 2", s)
	}
	for name, want := range map[string]float64{
		"registry_notifications_pending": 4, "registry_notifications_events_total": 9,
		"registry_notifications_successes_total": 5, "registry_notifications_dropped_total": 2,
	} {
		if got := value(after, name, map[string]string{"endpoint": "gitlab"}); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if after["go_goroutines"] == nil || after["process_cpu_seconds_total"] == nil {
		t.Error("runtime and process metrics missing")
	}
}

func TestOtherDriversAreTimedToo(t *testing.T) {
	var d storage.Driver = plainDriver{}
	got := New().Driver(d)
	if _, ok := got.(*timed); !ok {
		t.Fatalf("a driver with no optional interface was not timed: %T", got)
	}
	if diff := capabilityDiff(d, got); diff != "" {
		t.Error(diff)
	}
}

// plainDriver is a driver with none of the optional interfaces.
type plainDriver struct{ storage.Driver }

func (plainDriver) Name() string { return "plain" }
func (plainDriver) Stat(context.Context, string) (storage.FileInfo, error) {
	return storage.FileInfo{}, nil
}
