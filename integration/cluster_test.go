package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/testtools"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// Several regctl serve nodes on one versitygw bucket with a shared Redis
// blob descriptor cache: real processes, go-containerregistry as client.

// clusterHeartbeat is the nodes' heartbeat in these tests: short enough
// for quick tests, long enough for a loaded machine.
const clusterHeartbeat = 500 * time.Millisecond

type cluster struct {
	gw     *testtools.VersityGW
	bucket string
	redis  *testtools.Redis
	drv    *storage.S3
	dir    string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	g := testtools.NewVersityGW(t)
	c := &cluster{gw: g, bucket: g.Bucket(t), redis: testtools.StartRedis(t), dir: t.TempDir()}
	c.drv = s3Driver(t, g, c.bucket)
	t.Cleanup(closeClientConns)
	return c
}

func (c *cluster) env(heartbeat time.Duration) []string {
	return cleanEnv(maintenance.HeartbeatEnv + "=" + heartbeat.String())
}

// clusterNode is one running regctl serve.
type clusterNode struct {
	s3Node
	name   string
	config string
	proc   *testtools.Process
}

// config writes a node's config.yml: the bucket, the redis cache.
func (c *cluster) config(t *testing.T, n s3Node, name string) string {
	t.Helper()
	y := strings.Replace(n.yaml(), "http:\n", "  cache:\n    blobdescriptor: redis\nhttp:\n", 1) +
		"redis:\n  addrs: [" + c.redis.Addr + "]\n  dialtimeout: 500ms\n  readtimeout: 500ms\n"
	p := filepath.Join(c.dir, name+".yml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *cluster) start(t *testing.T, name string, heartbeat time.Duration, edit func(*s3Node)) *clusterNode {
	t.Helper()
	n := newS3Node(t, c.gw, c.bucket)
	n.Level = "info"
	if edit != nil {
		edit(&n)
	}
	cfg := c.config(t, n, name)
	cmd := exec.Command(regctlBinary(t), "serve", cfg)
	cmd.Env = c.env(heartbeat)
	return &clusterNode{s3Node: n, name: name, config: cfg, proc: testtools.StartCmd(t, n.Addr, cmd)}
}

// gcCmd is registry-garbage-collect -m on node's config, as run from
// that node's host, with JSON output.
func (c *cluster) gcCmd(t *testing.T, node *clusterNode, extra ...string) *exec.Cmd {
	args := append([]string{"-o", "json", "registry-garbage-collect", "-m", "--ack-timeout", "30s"}, extra...)
	cmd := exec.Command(regctlBinary(t), append(args, node.config)...)
	cmd.Dir, cmd.Env = c.dir, c.env(clusterHeartbeat)
	return cmd
}

type gcOutput struct {
	Report struct {
		ManifestsDeleted, BlobsDeleted int
	} `json:"report"`
	Daemons      *int `json:"daemons_read_only"`
	CacheFlushed int  `json:"cache_keys_flushed"`
}

func (c *cluster) gc(t *testing.T, node *clusterNode) gcOutput {
	t.Helper()
	cmd := c.gcCmd(t, node)
	var stderr strings.Builder
	cmd.Stderr = &stderr // warnings; stdout is the JSON
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("registry-garbage-collect: %v\n%s%s", err, out, stderr.String())
	}
	var res gcOutput
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("registry-garbage-collect output (%v):\n%s", err, out)
	}
	return res
}

// probeWrite starts an upload on addr: it reports whether the node
// refused (405) and cancels an upload it accepted.
func probeWrite(t *testing.T, addr string) (refused bool, resp *http.Response, body []byte) {
	t.Helper()
	resp, body = do(t, http.MethodPost, addr, "/v2/probe/blobs/uploads/", nil, nil)
	if resp.StatusCode == http.StatusAccepted {
		if loc := resp.Header.Get("Location"); loc != "" {
			if i := strings.Index(loc, "/v2/"); i >= 0 {
				do(t, http.MethodDelete, addr, loc[i:], nil, nil)
			}
		}
	}
	return resp.StatusCode == http.StatusMethodNotAllowed, resp, body
}

// waitWritable waits until every node accepts writes again.
func waitWritable(t *testing.T, limit time.Duration, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, limit, n.name+" accepts writes", func() bool {
			refused, _, _ := probeWrite(t, n.Addr)
			return !refused
		})
	}
}

// pullAll pulls ref completely (manifest, config, every layer, digests
// checked) from each node.
func pullAll(ref string, nodes ...*clusterNode) error {
	var errs []error
	for _, n := range nodes {
		r, err := nameRef(n.Addr + "/" + ref)
		if err != nil {
			return err
		}
		img, err := remote.Image(r)
		if err == nil {
			err = verifyImage(img)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s from %s: %w", ref, n.name, err))
		}
	}
	return errors.Join(errs...)
}

func nameRef(s string) (name.Reference, error) { return name.ParseReference(s, name.Insecure) }

func push(addr, ref string, img v1.Image) error {
	r, err := nameRef(addr + "/" + ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

func randomImage(t *testing.T, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestClusterThreeNodesGC: three nodes on one bucket with Redis. GC
// runs from node A's host while node B is pushed to: during the run
// writes to B and C answer 405 JSON and pulls keep working; afterwards
// every tagged image pulls from all three, and an image deleted,
// collected and pushed again pulls everywhere (the cache did not keep
// its blobs "existing").
func TestClusterThreeNodesGC(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, "a", clusterHeartbeat, nil)
	b := c.start(t, "b", clusterHeartbeat, nil)
	cc := c.start(t, "c", clusterHeartbeat, nil)
	nodes := []*clusterNode{a, b, cc}

	app, lib, v2 := randomImage(t, 2048, 2), randomImage(t, 2048, 2), randomImage(t, 2048, 1)
	for _, p := range []struct {
		node *clusterNode
		ref  string
		img  v1.Image
	}{
		{a, "team/app:v1", randomImage(t, 2048, 2)}, // overwritten below: garbage for -m
		{b, "team/app:v1", app},
		{cc, "team/lib:v1", lib},
		{b, "team/app:v2", v2},
	} {
		if err := push(p.node.Addr, p.ref, p.img); err != nil {
			t.Fatalf("push %s to %s: %v", p.ref, p.node.name, err)
		}
	}
	tags := []string{"team/app:v1", "team/lib:v1", "team/app:v2"}
	// Pull everything everywhere: the shared cache is warm.
	for _, ref := range tags {
		if err := pullAll(ref, nodes...); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("read-only within a heartbeat", func(t *testing.T) {
		// How long after the lease is taken does each node refuse?
		lease, err := maintenance.Acquire(t.Context(), c.drv, maintenance.Holder("test"), "measurement", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var worst time.Duration
		pending := map[*clusterNode]bool{a: true, b: true, cc: true}
		for len(pending) > 0 && time.Since(start) < 10*time.Second {
			for n := range pending {
				if refused, _, _ := probeWrite(t, n.Addr); refused {
					took := time.Since(start)
					t.Logf("node %s read-only %s after the lease (heartbeat %s)", n.name, took.Round(time.Millisecond), clusterHeartbeat)
					worst = max(worst, took)
					delete(pending, n)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := lease.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(pending) > 0 {
			t.Fatalf("%d node(s) never refused writes", len(pending))
		}
		t.Logf("every node read-only %s after the lease", worst.Round(time.Millisecond))
		// One interval, plus room for the probes themselves on a
		// loaded machine.
		if worst > clusterHeartbeat+clusterHeartbeat/2 {
			t.Errorf("slowest node took %s, more than one heartbeat (%s) and the margin", worst, clusterHeartbeat)
		}
		waitWritable(t, 5*time.Second, nodes...)
	})

	t.Run("GC with pushes and pulls", func(t *testing.T) {
		gc := c.gcCmd(t, a)
		var gcOut, gcErrOut strings.Builder
		gc.Stdout, gc.Stderr = &gcOut, &gcErrOut
		if err := gc.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- gc.Wait() }()

		refusedOn := map[string]int{}
		var pullErrs []error
		var accepted []string
		pushes := 0
		var gcErr error
	loop:
		for i := 0; ; i++ {
			select {
			case gcErr = <-done:
				break loop
			default:
			}
			for _, n := range []*clusterNode{b, cc} {
				refused, resp, body := probeWrite(t, n.Addr)
				if refused {
					checkReadOnlyRefusal(t, "POST upload on "+n.name+" during GC", resp, body)
					refusedOn[n.name]++
				}
			}
			if err := pullAll(tags[i%len(tags)], nodes[i%3]); err != nil {
				pullErrs = append(pullErrs, err)
			}
			if i%4 == 0 {
				ref := fmt.Sprintf("team/during:%d", pushes)
				pushes++
				if push(b.Addr, ref, randomImage(t, 1024, 1)) == nil {
					accepted = append(accepted, ref)
				}
			}
		}
		if gcErr != nil {
			t.Fatalf("registry-garbage-collect: %v\n%s%s", gcErr, gcOut.String(), gcErrOut.String())
		}
		var res gcOutput
		if err := json.Unmarshal([]byte(gcOut.String()), &res); err != nil {
			t.Fatalf("GC output (%v):\n%s", err, gcOut.String())
		}
		if res.Daemons == nil || *res.Daemons != 3 {
			t.Errorf("daemons_read_only = %v, want 3", res.Daemons)
		}
		if res.Report.ManifestsDeleted < 1 || res.Report.BlobsDeleted < 1 {
			t.Errorf("report %+v: want the overwritten image collected", res.Report)
		}
		if res.CacheFlushed == 0 {
			t.Error("GC flushed no key of the warm redis cache")
		}
		for _, n := range []string{"b", "c"} {
			if refusedOn[n] == 0 {
				t.Errorf("node %s never answered 405 during the GC run", n)
			}
		}
		for _, err := range pullErrs {
			t.Errorf("pull during GC: %v", err)
		}
		t.Logf("during GC: %d probes refused on b, %d on c; %d of %d pushes to b accepted", refusedOn["b"], refusedOn["c"], len(accepted), pushes)

		waitWritable(t, 5*time.Second, nodes...)
		for _, ref := range append(tags, accepted...) {
			if err := pullAll(ref, nodes...); err != nil {
				t.Errorf("after GC: %v", err)
			}
		}
	})

	t.Run("re-push after delete and GC", func(t *testing.T) {
		d, err := lib.Digest()
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, http.MethodDelete, a.Addr, "/v2/team/lib/manifests/"+d.String(), nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE manifest on a: %s %s", resp.Status, body)
		}
		// Every node sees the delete at once (the cache was cleared).
		for _, n := range nodes {
			if resp, _ := do(t, http.MethodHead, n.Addr, "/v2/team/lib/manifests/"+d.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("deleted manifest on %s: %s", n.name, resp.Status)
			}
		}
		res := c.gc(t, a)
		if res.Report.BlobsDeleted < 3 {
			t.Errorf("GC deleted %d blobs, want at least lib's config and 2 layers", res.Report.BlobsDeleted)
		}
		layers, _ := lib.Layers()
		ld, _ := layers[0].Digest()
		for _, n := range nodes {
			if resp, _ := do(t, http.MethodHead, n.Addr, "/v2/team/lib/blobs/"+ld.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("collected layer on %s: %s, want 404", n.name, resp.Status)
			}
		}
		if err := push(cc.Addr, "team/lib:v1", lib); err != nil {
			t.Fatalf("re-push to c: %v", err)
		}
		if err := pullAll("team/lib:v1", nodes...); err != nil {
			t.Error(err)
		}
	})
}

// TestClusterCrashes: a node killed -9 while GC waits for it does not
// hold GC past its gone time; a GC killed -9 leaves the cluster
// read-only only until its lease expires; a node cut off from its bucket
// refuses writes within 3 heartbeats.
func TestClusterCrashes(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, "a", clusterHeartbeat, nil)
	b := c.start(t, "b", clusterHeartbeat, nil)

	t.Run("node killed during maintenance", func(t *testing.T) {
		// d heartbeats every 2 s and is frozen, so GC waits for it; then
		// it is killed -9 while GC holds the lease.
		const slow = 2 * time.Second
		d := c.start(t, "d", slow, nil)
		if err := syscall.Kill(d.proc.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		gc := c.gcCmd(t, a, "--ack-timeout", "60s")
		var out, errOut strings.Builder
		gc.Stdout, gc.Stderr = &out, &errOut
		start := time.Now()
		if err := gc.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "a refuses writes", func() bool { r, _, _ := probeWrite(t, a.Addr); return r })
		syscall.Kill(d.proc.Pid(), syscall.SIGKILL)
		<-d.proc.Done()
		if err := gc.Wait(); err != nil {
			t.Fatalf("GC: %v\n%s%s", err, out.String(), errOut.String())
		}
		took := time.Since(start)
		var res gcOutput
		json.Unmarshal([]byte(out.String()), &res)
		if res.Daemons == nil || *res.Daemons != 2 {
			t.Errorf("daemons_read_only = %v, want 2 (d was gone)\n%s", res.Daemons, out.String())
		}
		// d is gone 3 of its intervals after its last beat.
		if took > maintenance.GoneAfter*slow+5*time.Second {
			t.Errorf("GC took %s with a killed node", took)
		}
		t.Logf("GC with a node killed -9 during maintenance took %s (gone after %s)", took.Round(time.Millisecond), maintenance.GoneAfter*slow)
		waitWritable(t, 5*time.Second, a, b)
	})

	t.Run("GC killed", func(t *testing.T) {
		const ttl = 3 * time.Second
		e := c.start(t, "e", 2*time.Second, nil)
		if err := syscall.Kill(e.proc.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(e.proc.Pid(), syscall.SIGKILL)
		gc := c.gcCmd(t, a, "--lease-ttl", ttl.String())
		gc.Stdout, gc.Stderr = io.Discard, io.Discard
		if err := gc.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "a and b refuse writes", func() bool {
			ra, _, _ := probeWrite(t, a.Addr)
			rb, _, _ := probeWrite(t, b.Addr)
			return ra && rb
		})
		gc.Process.Signal(syscall.SIGKILL)
		gc.Wait()
		killed := time.Now()
		lease, err := maintenance.Current(t.Context(), c.drv)
		if err != nil || lease == nil {
			t.Fatalf("lease after the kill: %v, %v; want it left behind", lease, err)
		}
		if refused, _, _ := probeWrite(t, b.Addr); !refused && time.Now().Before(lease.Expires) {
			t.Error("b took writes while the dead GC's lease was live")
		}
		waitWritable(t, ttl+3*clusterHeartbeat+2*time.Second, a, b)
		t.Logf("writable again %s after GC was killed (lease ttl %s)", time.Since(killed).Round(time.Millisecond), ttl)
		if time.Now().Before(lease.Expires.Add(-100 * time.Millisecond)) {
			t.Errorf("writable before the lease expired")
		}
	})

	t.Run("bucket unreachable", func(t *testing.T) {
		p := newCutProxy(t, strings.TrimPrefix(c.gw.Endpoint, "http://"))
		f := c.start(t, "f", clusterHeartbeat, func(n *s3Node) { n.Endpoint = "http://" + p.addr() })
		if refused, resp, body := probeWrite(t, f.Addr); refused {
			t.Fatalf("f refuses writes before the cut: %s %s", resp.Status, body)
		}
		p.cut()
		cut := time.Now()
		var resp *http.Response
		var body []byte
		waitFor(t, 10*time.Second, "f refuses writes", func() bool {
			var refused bool
			refused, resp, body = probeWrite(t, f.Addr)
			return refused
		})
		probed := time.Since(cut)
		checkReadOnlyRefusal(t, "POST upload on f cut off", resp, body)
		// When f switched, by its own log: the probes themselves are slow
		// against a node whose storage calls fail.
		switched, ok := logTime(f.proc.Output(), "refusing writes")
		if !ok {
			t.Fatalf("f logged no switch:\n%s", f.proc.Output())
		}
		took := switched.Sub(cut)
		t.Logf("f refused writes %s after its bucket became unreachable, by its log (3 intervals = %s; first refused probe after %s)",
			took.Round(time.Millisecond), maintenance.GoneAfter*clusterHeartbeat, probed.Round(time.Millisecond))
		// The lease was last read, and the heartbeat last written, at
		// most an interval before the cut.
		if limit := maintenance.GoneAfter * clusterHeartbeat; took > limit+clusterHeartbeat/2 {
			t.Errorf("took %s, want within %s", took, limit)
		}
		// a and b are not affected.
		waitWritable(t, 2*time.Second, a, b)
	})
}

// TestClusterZeroLoss pushes to all three nodes concurrently while
// registry-cleanup (through the API of one node, with a policy that
// deletes tags) and GC -m run in a loop for a few rounds. Afterwards
// every tag a client saw accepted and no cleanup deleted pulls
// completely from every node, and every tag a cleanup deleted is gone
// from every node.
func TestClusterZeroLoss(t *testing.T) {
	c := newCluster(t)
	nodes := []*clusterNode{
		c.start(t, "a", clusterHeartbeat, nil),
		c.start(t, "b", clusterHeartbeat, nil),
		c.start(t, "c", clusterHeartbeat, nil),
	}
	// Even tags go, less the newest of each repository (all dates are
	// equal, so by name).
	settings := filepath.Join(c.dir, "regctl.toml")
	if err := os.WriteFile(settings, []byte("data_dir = \"data\"\n[[registry.cleanup_policies]]\nname = \"load\"\n"+
		"repositories = [\"load/**\"]\nenabled = true\nname_regex = \"t[0-9]*[02468]\"\nkeep_n = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A layer every image shares, so pushes skip it (HEAD answered from
	// the cache) as real clients do.
	base := randomImage(t, 4096, 1)
	baseLayers, _ := base.Layers()

	stop := make(chan struct{})
	var mu sync.Mutex
	var accepted []string
	attempts := 0
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				img, err := mutate.AppendLayers(randomImage(t, 2048, 1), baseLayers...)
				if err != nil {
					t.Error(err)
					return
				}
				ref := fmt.Sprintf("load/p%d:t%d", i, j)
				err = push(n.Addr, ref, img)
				mu.Lock()
				attempts++
				if err == nil {
					accepted = append(accepted, ref)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond) // read-only: try again shortly
				}
			}
		}()
	}
	deleted := map[string]bool{}
	const rounds = 3
	for r := range rounds {
		time.Sleep(300 * time.Millisecond)
		via := nodes[(r+1)%3]
		// The last GC may have ended a moment ago: the nodes take up to
		// a heartbeat to accept deletes again.
		waitWritable(t, 5*time.Second, via)
		out, code := runRegctl(t, c.dir, c.env(clusterHeartbeat), "--settings", settings, "-o", "json", "registry-cleanup", via.config)
		if code != 0 {
			t.Fatalf("registry-cleanup round %d via %s: exit %d\n%s", r+1, via.name, code, out)
		}
		var rep struct {
			Repositories []struct {
				Name    string   `json:"name"`
				Deleted []string `json:"deleted"`
			} `json:"repositories"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("registry-cleanup output (%v):\n%s", err, out)
		}
		n := 0
		for _, rr := range rep.Repositories {
			for _, tag := range rr.Deleted {
				deleted[rr.Name+":"+tag] = true
				n++
			}
		}
		res := c.gc(t, nodes[r%3])
		t.Logf("round %d: cleanup via %s deleted %d tags; GC from %s: %d manifests, %d blobs deleted, %d cache keys flushed",
			r+1, via.name, n, nodes[r%3].name, res.Report.ManifestsDeleted, res.Report.BlobsDeleted, res.CacheFlushed)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d of %d pushes accepted during %d rounds of cleanup and GC; cleanup deleted %d tags", len(accepted), attempts, rounds, len(deleted))
	if len(accepted) < rounds || len(deleted) == 0 {
		t.Fatalf("%d pushes accepted, %d tags deleted: the test did not load the cluster", len(accepted), len(deleted))
	}
	kept := 0
	for _, ref := range accepted {
		if deleted[ref] {
			continue
		}
		kept++
		if err := pullAll(ref, nodes...); err != nil {
			t.Errorf("accepted push lost: %v", err)
		}
	}
	for ref := range deleted {
		repo, tag, _ := strings.Cut(ref, ":")
		for _, n := range nodes {
			if resp, _ := do(t, http.MethodGet, n.Addr, "/v2/"+repo+"/manifests/"+tag, nil, map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json"}); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s, deleted by cleanup, answers %s on %s", ref, resp.Status, n.name)
			}
		}
	}
	t.Logf("%d accepted tags pulled from 3 nodes; %d deleted tags 404 on 3 nodes", kept, len(deleted))
}

// logTime is the time of the first line of a regctl serve log (slog's
// text format) that contains msg.
func logTime(log, msg string) (time.Time, bool) {
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "time="); ok {
				ts, err := time.Parse(time.RFC3339Nano, v)
				return ts, err == nil
			}
		}
	}
	return time.Time{}, false
}

// cutProxy forwards TCP to a backend until cut, then refuses.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, backend string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", backend)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut closes the listener and every connection: the backend is gone.
func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
