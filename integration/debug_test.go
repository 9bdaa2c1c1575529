package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"regctl/internal/testtools"
)

const fastHealth = "health:\n  storagedriver:\n    enabled: true\n    interval: 200ms\n    threshold: 2\n"

func getDebug(t *testing.T, addr, path string) (int, []byte) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitHealth waits for /debug/health to answer status and returns the
// failing checks it names.
func waitHealth(t *testing.T, addr string, status int) map[string]string {
	t.Helper()
	var failing map[string]string
	waitFor(t, 30*time.Second, "/debug/health "+http.StatusText(status), func() bool {
		code, body := getDebug(t, addr, "/debug/health")
		failing = nil
		if err := json.Unmarshal(body, &failing); err != nil {
			t.Fatalf("health body is not JSON: %v: %s", err, body)
		}
		return code == status
	})
	return failing
}

func TestDebugServerOnFilesystem(t *testing.T) {
	addr, daddr := testtools.FreeAddr(t), testtools.FreeAddr(t)
	cfg := serveConfig(t, addr, fastHealth+
		"notifications:\n  endpoints:\n    - name: hook\n      url: http://"+testtools.FreeAddr(t)+"/\n      backoff: 1h\n      maxretries: 1\n")
	// http is the config's last section: debug goes into it.
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, []byte("  debug:\n    addr: "+daddr+"\n    prometheus:\n      enabled: true\n")...), 0o600)
	startServeT(t, cfg, addr)
	before := scrapeMetrics(t, daddr)
	d := pushBlob(t, addr, "team/app", []byte("a blob to create the root"))
	for range 2 {
		if resp, _ := do(t, http.MethodGet, addr, "/v2/team/app/blobs/"+d, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("blob GET: %s", resp.Status)
		}
	}
	after := scrapeMetrics(t, daddr)
	get200 := `registry_http_requests_total{code="200",method="GET",route="blob"}`
	if n := after[get200] - before[get200]; n != 2 {
		t.Errorf("%s moved by %v, want 2", get200, n)
	}

	if f := waitHealth(t, daddr, http.StatusOK); len(f) != 0 {
		t.Errorf("healthy but failing = %v", f)
	}
	if code, body := getDebug(t, daddr, "/debug/pprof/"); code != 200 || !strings.Contains(string(body), "goroutine") {
		t.Errorf("pprof: %d", code)
	}
	type endpointVars struct {
		Name    string
		Pending int64
		Events  int64
		Errors  int64
	}
	var eps []endpointVars
	var body []byte
	// The events (a push, two pulls) reach the disk queue, and a first
	// attempt fails, just after the requests answered: poll.
	waitFor(t, 20*time.Second, "the events in /debug/vars", func() bool {
		var code int
		code, body = getDebug(t, daddr, "/debug/vars")
		var vars struct {
			Registry struct {
				Notifications struct {
					Endpoints []endpointVars
				}
			} `json:"registry"`
			Memstats json.RawMessage `json:"memstats"`
		}
		if err := json.Unmarshal(body, &vars); code != 200 || err != nil || vars.Memstats == nil {
			t.Fatalf("vars: %d %v %s", code, err, body)
		}
		eps = vars.Registry.Notifications.Endpoints
		return len(eps) == 1 && eps[0].Events == 3 && eps[0].Errors >= 1
	})
	if eps[0].Name != "hook" || eps[0].Pending != 3 {
		t.Errorf("endpoints in /debug/vars = %+v, want hook with 3 events pending\n%s", eps, body)
	}
	if m := scrapeMetrics(t, daddr); m[`registry_notifications_pending{endpoint="hook"}`] != 3 {
		t.Errorf("registry_notifications_pending = %v, want 3", m[`registry_notifications_pending{endpoint="hook"}`])
	}

	// The storage goes away under the daemon.
	root := filepath.Join(filepath.Dir(cfg), "root")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	failing := waitHealth(t, daddr, http.StatusServiceUnavailable)
	if msg := failing["storagedriver_filesystem"]; !strings.Contains(msg, root) || !strings.Contains(msg, "gone") {
		t.Errorf("failing = %v, want storagedriver_filesystem naming %s", failing, root)
	}
	// As in Distribution, the whole API answers 503 meanwhile, /v2/
	// included, so a load balancer probing it takes the node out.
	for _, p := range []string{"/v2/", "/v2/team/app/blobs/" + d} {
		resp, body := do(t, http.MethodGet, addr, p, nil, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"UNAVAILABLE"`) {
			t.Errorf("GET %s while unhealthy: %s %s", p, resp.Status, body)
		}
	}
	// It comes back.
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, daddr, http.StatusOK)
	if resp, body := do(t, http.MethodGet, addr, "/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ once healthy again: %s %s", resp.Status, body)
	}
}

func TestDebugHealthOnS3(t *testing.T) {
	gw := testtools.NewVersityGW(t)
	n := s3Node{GW: gw, Bucket: gw.Bucket(t), Addr: testtools.FreeAddr(t)}
	daddr := testtools.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte(n.yaml()+"  debug:\n    addr: "+daddr+"\n"+fastHealth), 0o600); err != nil {
		t.Fatal(err)
	}
	startServeT(t, cfg, n.Addr)
	waitHealth(t, daddr, http.StatusOK)
	if resp, body := do(t, http.MethodGet, n.Addr, "/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ while healthy: %s %s", resp.Status, body)
	}
	gw.Process.Stop()
	failing := waitHealth(t, daddr, http.StatusServiceUnavailable)
	if failing["storagedriver_s3"] == "" {
		t.Errorf("failing = %v, want storagedriver_s3", failing)
	}
	if resp, body := do(t, http.MethodGet, n.Addr, "/v2/", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /v2/ with the bucket gone: %s %s", resp.Status, body)
	}
}

// TestLastGCInMetrics runs a dry run and a real garbage collection as
// their own processes and expects the running daemon to export both
// runs' figures once the real run's maintenance window ends.
func TestLastGCInMetrics(t *testing.T) {
	addr, daddr := testtools.FreeAddr(t), testtools.FreeAddr(t)
	cfg := serveConfig(t, addr, "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, []byte("  debug:\n    addr: "+daddr+"\n    prometheus:\n      enabled: true\n")...), 0o600)
	startServeT(t, cfg, addr)
	if m := scrapeMetrics(t, daddr); m[`registry_gc_last_run_success{dry_run="false"}`] != 0 || len(gcFigures(m)) != 0 {
		t.Fatalf("GC figures before any run: %v", gcFigures(m))
	}
	// An upload nothing references: GC deletes it.
	blob := []byte("a blob no manifest references")
	pushBlob(t, addr, "team/app", blob)

	env := cleanEnv() // the daemon's heartbeat, so GC waits for its ack
	for _, args := range [][]string{{"-d"}, {}} {
		out, code := runRegctl(t, filepath.Dir(cfg), env, append([]string{"registry-garbage-collect"}, append(args, cfg)...)...)
		if code != 0 {
			t.Fatalf("registry-garbage-collect %v: exit %d\n%s", args, code, out)
		}
	}
	var m map[string]float64
	waitFor(t, 30*time.Second, "the real run's figures in /metrics", func() bool {
		m = scrapeMetrics(t, daddr)
		return m[`registry_gc_last_blobs_deleted{dry_run="false"}`] == 1
	})
	for _, dry := range []string{"true", "false"} {
		l := `{dry_run="` + dry + `"}`
		for name, want := range map[string]float64{
			"registry_gc_last_blobs_deleted": 1, "registry_gc_last_bytes_freed": float64(len(blob)),
			"registry_gc_last_run_success": 1, "registry_gc_last_run_delete_untagged": 0,
			"registry_gc_last_problems": 0, "registry_gc_last_manifests_deleted": 0,
		} {
			if got, ok := m[name+l]; !ok || got != want {
				t.Errorf("%s%s = %v (present %v), want %v", name, l, got, ok, want)
			}
		}
		ts := m["registry_gc_last_run_timestamp_seconds"+l]
		if age := time.Since(time.Unix(int64(ts), 0)); age < 0 || age > 5*time.Minute {
			t.Errorf("registry_gc_last_run_timestamp_seconds%s = %v: %v ago", l, ts, age)
		}
		if m["registry_gc_last_success_timestamp_seconds"+l] != ts {
			t.Errorf("last success %v, want the run's %v", m["registry_gc_last_success_timestamp_seconds"+l], ts)
		}
	}
	if m[`registry_gc_last_run_timestamp_seconds{dry_run="false"}`] < m[`registry_gc_last_run_timestamp_seconds{dry_run="true"}`] {
		t.Errorf("the real run finished before the dry run: %v", gcFigures(m))
	}
}

func gcFigures(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "registry_gc_last_") {
			out[k] = v
		}
	}
	return out
}

// scrapeMetrics reads /metrics with Prometheus' parser and returns each
// counter and gauge sample as name{labels sorted} -> value.
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := getDebug(t, addr, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			sort.Strings(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			}
		}
	}
	return out
}
