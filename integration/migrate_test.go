package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/testtools"
)

// migrateSite is a regctl install on the filesystem storage, served by
// regctl serve with GitLab token auth, and a versitygw bucket named by
// [migration.s3].
type migrateSite struct {
	t        *testing.T
	dir      string
	settings string
	config   string
	addr     string
	env      []string
	gw       *testtools.VersityGW
	bucket   string
	daemon   *testtools.Process
	images   map[string]v1.Image // "repo:tag"
	token    string
}

// newMigrateSite sets a site up; endpoint, when set, replaces the
// gateway's in [migration.s3] (a proxy in front of it).
func newMigrateSite(t *testing.T, endpoint func(gw *testtools.VersityGW) string) *migrateSite {
	t.Helper()
	s := &migrateSite{t: t, dir: t.TempDir(), addr: testtools.FreeAddr(t), gw: testtools.NewVersityGW(t), images: map[string]v1.Image{}}
	s.bucket = s.gw.Bucket(t)
	ep := s.gw.Endpoint
	if endpoint != nil {
		ep = endpoint(s.gw)
	}
	s.settings = filepath.Join(s.dir, "regctl.toml")
	src := fmt.Sprintf(`data_dir = "data"
# the registry
[registry]
registry_http_addr = %q

[registry.storage.filesystem]
rootdirectory = "storage" # beside the settings

[migration.s3]
accesskey = %q
secretkey = %q
region = %q
regionendpoint = %q
bucket = %q
pathstyle = true
rootdirectory = "/gitlab/registry"
`, s.addr, s.gw.AccessKey, s.gw.SecretKey, s.gw.Region, ep, s.bucket)
	if err := os.WriteFile(s.settings, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	s.env = cleanEnv("REGCTL_CLUSTER_HEARTBEAT=100ms")
	s.run("reconfigure")
	s.config = filepath.Join(s.dir, "data", "registry", "config.yml")
	s.daemon = s.serve()
	tok := s.run("token", "issue", "--ttl", "10m", "--scope", "repository:group/app:pull,push", "--scope", "repository:tools:pull,push")
	s.token = strings.TrimSpace(tok)
	return s
}

// run runs regctl with the site's settings and wants exit 0.
func (s *migrateSite) run(args ...string) string {
	s.t.Helper()
	out, code := runRegctl(s.t, s.dir, s.env, append([]string{"--settings", s.settings}, args...)...)
	if code != 0 {
		s.t.Fatalf("regctl %v: exit %d\n%s", args, code, out)
	}
	return out
}

func (s *migrateSite) serve() *testtools.Process {
	s.t.Helper()
	cmd := exec.Command(regctlBinary(s.t), "serve", s.config)
	cmd.Env = s.env
	p := testtools.StartCmd(s.t, s.addr, cmd)
	s.t.Cleanup(closeClientConns)
	return p
}

func (s *migrateSite) auth() remote.Option {
	return remote.WithAuth(&authn.Bearer{Token: s.token})
}

func (s *migrateSite) push(repo, tag string, layers int) {
	s.t.Helper()
	img, err := random.Image(2048, int64(layers))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(mustRef(s.t, s.addr+"/"+repo+":"+tag), img, s.auth()); err != nil {
		s.t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	s.images[repo+":"+tag] = img
}

// pullAll pulls every image pushed from addr, layers included.
func (s *migrateSite) pullAll(addr string) {
	s.t.Helper()
	for ref, want := range s.images {
		img, err := remote.Image(mustRef(s.t, addr+"/"+ref), s.auth())
		if err != nil {
			s.t.Fatalf("pull %s: %v", ref, err)
		}
		gd, _ := img.Digest()
		wd, _ := want.Digest()
		if gd != wd {
			s.t.Fatalf("pull %s: %s, want %s", ref, gd, wd)
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed() // checks the digest as it reads
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				s.t.Fatalf("pull %s: layer: %v", ref, err)
			}
		}
	}
}

// keys counts the bucket's objects.
func (s *migrateSite) keys() map[string]bool {
	s.t.Helper()
	c := s.gw.Client()
	keys := map[string]bool{}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	for {
		out, err := c.ListObjectsV2(s.t.Context(), in)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys[aws.ToString(o.Key)] = true
		}
		if !aws.ToBool(out.IsTruncated) {
			return keys
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

type syncJSON struct {
	Result struct {
		SourceObjects int64 `json:"source_objects"`
		Copied        int64 `json:"copied"`
		Unchanged     int64 `json:"unchanged"`
		Deleted       int64 `json:"deleted"`
		Failed        int64 `json:"failed"`
	} `json:"result"`
	Plan []struct {
		Action, Path string
	} `json:"plan"`
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, out)
	}
	return v
}

// The migration as a user runs it: dry run, sync, a kill -9 half-way and
// a resume, verify, and the bucket served by regctl serve gives back
// every image. No output ever shows the secret key.
func TestMigrateStorageSyncKillResumeAndServe(t *testing.T) {
	s := newMigrateSite(t, nil)
	for i := range 3 {
		s.push("group/app", fmt.Sprintf("v%d", i), 2)
	}
	s.push("tools", "latest", 1)
	var outputs []string

	out := s.run("migrate-storage", "--dry-run", "-o", "json")
	outputs = append(outputs, out)
	dry := decode[syncJSON](t, out)
	if dry.Result.Copied == 0 || int64(len(dry.Plan)) != dry.Result.Copied || len(s.keys()) != 0 {
		t.Fatalf("dry run: %+v, bucket %d keys", dry.Result, len(s.keys()))
	}

	// A slow run (one request a time, 20 a second) killed after a few
	// objects, then run again.
	cmd := exec.Command(regctlBinary(t), "--settings", s.settings, "migrate-storage", "--concurrency", "1", "-v")
	cmd.Env = s.env
	var killed strings.Builder
	cmd.Stdout, cmd.Stderr = &killed, &killed
	limited := strings.Replace(mustReadFile(t, s.settings), "pathstyle = true", "pathstyle = true\nmaxrequestspersecond = 20", 1)
	if err := os.WriteFile(s.settings, []byte(limited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a few objects copied", func() bool { return len(s.keys()) >= 5 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	outputs = append(outputs, killed.String())
	present := len(s.keys())
	if int64(present) >= dry.Result.Copied {
		t.Fatalf("the killed run copied everything (%d) before it was killed", present)
	}
	unlimited := strings.Replace(limited, "\nmaxrequestspersecond = 20", "", 1)
	if err := os.WriteFile(s.settings, []byte(unlimited), 0o600); err != nil {
		t.Fatal(err)
	}
	out = s.run("migrate-storage", "-o", "json")
	outputs = append(outputs, out)
	res := decode[syncJSON](t, out)
	if res.Result.Unchanged < int64(present) || res.Result.Copied+res.Result.Unchanged != dry.Result.Copied || res.Result.Failed != 0 {
		t.Fatalf("resume: %+v; %d objects were there already, %d to copy", res.Result, present, dry.Result.Copied)
	}

	out = s.run("migrate-storage", "--verify", "-v")
	outputs = append(outputs, out)
	if !strings.Contains(out, "the bucket mirrors the source") {
		t.Fatalf("verify:\n%s", out)
	}
	for _, o := range outputs {
		if strings.Contains(o, s.gw.SecretKey) {
			t.Fatalf("an output shows the secret key:\n%s", o)
		}
	}

	// regctl serve on the bucket: settings of its own beside the first
	// (so the same secrets and token key), storage on s3.
	addr := testtools.FreeAddr(t)
	s3Settings := filepath.Join(s.dir, "s3.toml")
	src := fmt.Sprintf("data_dir = \"data-s3\"\n[registry]\nregistry_http_addr = %q\n[registry.storage.redirect]\ndisable = true\n[registry.storage.s3]\n"+
		"accesskey = %q\nsecretkey = %q\nregion = %q\nregionendpoint = %q\nbucket = %q\npathstyle = true\nrootdirectory = \"/gitlab/registry\"\n",
		addr, s.gw.AccessKey, s.gw.SecretKey, s.gw.Region, s.gw.Endpoint, s.bucket)
	if err := os.WriteFile(s3Settings, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runRegctl(t, s.dir, s.env, "--settings", s3Settings, "reconfigure"); code != 0 {
		t.Fatalf("reconfigure: %s", out)
	}
	path := filepath.Join(s.dir, "data-s3", "registry", "config.yml")
	startServeT(t, path, addr)
	s.pullAll(addr)
}

// --cutover end to end: the settings switch to s3 and read-write, the
// config is rendered, the daemon reloaded; it then serves the old
// storage read-only only, and restarted on the new config it serves
// every image from the bucket and takes pushes.
func TestMigrateStorageCutover(t *testing.T) {
	s := newMigrateSite(t, nil)
	s.push("group/app", "v1", 2)
	s.push("tools", "latest", 1)
	orphan := "gitlab/registry/docker/registry/v2/repositories/gone/_manifests/tags/x/current/link"
	putObject(t, s.gw, s.bucket, orphan, "sha256:0")

	out := s.run("migrate-storage", "--cutover", "-o", "json")
	res := decode[cutoverJSON](t, out)
	if res.RolledBack || res.DaemonPID != s.daemon.Pid() || !res.RestartNeeded || res.Nodes != 1 || res.FinalSync.Deleted != 1 || len(res.Steps) != 6 {
		t.Fatalf("cutover: %s", out)
	}
	if strings.Contains(out, s.gw.SecretKey) {
		t.Fatal("the output shows the secret key")
	}
	settings := mustReadFile(t, s.settings)
	for _, want := range []string{"[registry.storage.s3]", "# [registry.storage.filesystem]", "[migration.s3]", "enabled = false"} {
		if !strings.Contains(settings, want) {
			t.Errorf("settings lack %q:\n%s", want, settings)
		}
	}
	cfg := mustReadFile(t, s.config)
	if !strings.Contains(cfg, "  s3:\n") || strings.Contains(cfg, "filesystem:") {
		t.Errorf("config.yml is not on s3:\n%s", cfg)
	}
	if s.keys()[orphan] {
		t.Error("the orphan is still in the bucket")
	}
	// The old daemon still serves the filesystem: pulls work, writes are
	// refused for good, since they would be lost.
	bearer := map[string]string{"Authorization": "Bearer " + s.token}
	resp, _ := do(t, http.MethodPost, s.addr, "/v2/tools/blobs/uploads/", nil, bearer)
	if resp.StatusCode == http.StatusAccepted {
		t.Fatal("the daemon on the old storage accepts pushes after the cutover")
	}
	s.pullAll(s.addr)

	s.daemon.Stop()
	s.daemon = s.serve()
	s.pullAll(s.addr)
	s.push("tools", "after", 1)
	if !s.keys()["gitlab/registry/docker/registry/v2/repositories/tools/_manifests/tags/after/current/link"] {
		t.Fatal("a push after the cutover did not land in the bucket")
	}
}

// A cutover whose final sync fails (the bucket starts refusing writes
// once the registry is read-only) rolls back: the settings file is as
// it was, config.yml is on the filesystem and read-write again, and the
// daemon takes pushes.
func TestMigrateStorageCutoverRollback(t *testing.T) {
	var lease string
	var refused atomic.Int64
	s := newMigrateSite(t, func(gw *testtools.VersityGW) string {
		target, _ := url.Parse(gw.Endpoint)
		proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signature covers Host
		}}
		srv := &http.Server{Addr: "", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && lease != "" {
				if _, err := os.Stat(lease); err == nil {
					refused.Add(1)
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>writes refused by the test</Message></Error>`)
					return
				}
			}
			proxy.ServeHTTP(w, r)
		})}
		addr := testtools.FreeAddr(t)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		return "http://" + addr
	})
	lease = filepath.Join(s.dir, "storage", "docker/registry/v2/_regctl/maintenance/lease.json")
	s.push("group/app", "v1", 2)
	// An orphan makes the final sync write (a delete), which is refused.
	putObject(t, s.gw, s.bucket, "gitlab/registry/docker/registry/v2/repositories/gone/_manifests/tags/x/current/link", "sha256:0")
	before := mustReadFile(t, s.settings)
	beforeCfg := mustReadFile(t, s.config)

	out, code := runRegctl(t, s.dir, s.env, "--settings", s.settings, "migrate-storage", "--cutover")
	if code != 1 || !strings.Contains(out, "rolled back") || refused.Load() == 0 {
		t.Fatalf("cutover: exit %d, %d writes refused\n%s", code, refused.Load(), out)
	}
	if got := mustReadFile(t, s.settings); got != before {
		t.Errorf("settings not restored:\n%s", got)
	}
	if got := mustReadFile(t, s.config); got != beforeCfg {
		t.Errorf("config.yml not restored:\n%s", got)
	}
	if _, err := os.Stat(lease); err == nil {
		t.Error("the maintenance lease is still there")
	}
	bearer := map[string]string{"Authorization": "Bearer " + s.token}
	waitFor(t, 5*time.Second, "pushes accepted again", func() bool {
		resp, _ := do(t, http.MethodPost, s.addr, "/v2/tools/blobs/uploads/", nil, bearer)
		return resp.StatusCode == http.StatusAccepted
	})
	s.push("tools", "after", 1)
	s.pullAll(s.addr)
}

type cutoverJSON struct {
	Steps []struct {
		Name, Status string
	} `json:"steps"`
	DaemonPID     int  `json:"daemon_pid"`
	RestartNeeded bool `json:"restart_needed"`
	RolledBack    bool `json:"rolled_back"`
	Nodes         int  `json:"nodes"`
	FinalSync     struct {
		Deleted int64 `json:"deleted"`
	} `json:"final_sync"`
}

func putObject(t *testing.T, gw *testtools.VersityGW, bucket, key, body string) {
	t.Helper()
	_, err := gw.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Symbolic links in the source stop a cutover at its first sync, before
// the registry goes read-only: nothing behind them reaches the bucket,
// nothing outside the root changes, and the settings stay as they were.
func TestMigrateStorageCutoverRefusesSymlinks(t *testing.T) {
	s := newMigrateSite(t, nil)
	s.push("group/app", "v1", 1)
	links := testtools.PlantSymlinks(t, filepath.Join(s.dir, "storage"))
	before := mustReadFile(t, s.settings)

	out, code := runRegctl(t, s.dir, s.env, "--settings", s.settings, "-o", "json", "migrate-storage", "--cutover")
	var res cutoverJSON
	// Warnings come first, the error line after.
	json.NewDecoder(strings.NewReader(out[max(0, strings.Index(out, "{\n")):])).Decode(&res)
	if code != 1 || len(res.Steps) != 1 || res.Steps[0].Name != "sync" || res.Steps[0].Status != "failed" || !strings.Contains(out, "symbolic link") {
		t.Fatalf("cutover: exit %d\n%s", code, out)
	}
	if got := mustReadFile(t, s.settings); got != before {
		t.Errorf("settings changed:\n%s", got)
	}
	for k := range s.keys() {
		if strings.Contains(k, "/repositories/evil/") || strings.Contains(k, "/blobs/sha256/ee/") || strings.Contains(k, links.SecretBlob[7:]) {
			t.Errorf("copied through a link: %s", k)
		}
	}
	links.CheckOutside(t)
	links.CheckLinks(t)
	s.push("tools", "after", 1) // still writable
}
