package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/fsutil"
	"regctl/internal/testtools"
)

// serveCfg is a regctl serve config.yml the tests rewrite between reloads.
type serveCfg struct {
	Addr     string
	Root     string
	Level    string // default warn
	ReadOnly bool
	Drain    string // http.draintimeout, "" for the default
	// FallbackTags is regctl.referrers.fallbacktags, the rendering of
	// [registry.referrers] fallback_tags.
	FallbackTags bool
}

func (c serveCfg) yaml() string {
	level := c.Level
	if level == "" {
		level = "warn"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", level, c.Root)
	fmt.Fprintf(&b, "  maintenance:\n    readonly:\n      enabled: %v\n", c.ReadOnly)
	fmt.Fprintf(&b, "http:\n  addr: %s\n", c.Addr)
	if c.Drain != "" {
		fmt.Fprintf(&b, "  draintimeout: %s\n", c.Drain)
	}
	if c.FallbackTags {
		b.WriteString("regctl:\n  referrers:\n    fallbacktags: true\n")
	}
	return b.String()
}

// write writes the config atomically, as reconfigure does, so a reload
// never reads half a file.
func (c serveCfg) write(t *testing.T, path string) {
	t.Helper()
	if err := fsutil.WriteFileAtomic(path, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpClient is used for every raw request; its own transport keeps the
// tests' connections apart from go-containerregistry's.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// do sends one request and returns the response with its body read.
// rawPath is sent as written (no cleaning, no escaping).
func do(t *testing.T, method, addr, rawPath string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, rawPath, err)
	}
	return resp, b
}

// ociError is the first entry of an OCI error body.
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeOCIError(t *testing.T, body []byte) ociError {
	t.Helper()
	var env struct {
		Errors []ociError `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) == 0 {
		t.Errorf("not an OCI error body (%v): %q", err, body)
		return ociError{}
	}
	return env.Errors[0]
}

// pushBlob uploads data to repo in one POST + PUT and returns its digest.
func pushBlob(t *testing.T, addr, repo string, data []byte) string {
	t.Helper()
	d := sha256Digest(data)
	resp, _ := do(t, http.MethodPost, addr, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	loc = strings.TrimPrefix(loc, "http://"+addr)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, body := do(t, http.MethodPut, addr, loc+sep+"digest="+d, data,
		map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %s %s", resp.Status, body)
	}
	return d
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// slowPull is a blob download the test reads at its own pace, so that it
// stays in flight across a reload or a shutdown.
type slowPull struct {
	t     *testing.T
	resp  *http.Response
	hash  io.Writer
	sum   func() string
	n     int64
	total int64
	buf   []byte
}

// startSlowPull sends GET for a blob and reads nothing yet.
func startSlowPull(t *testing.T, addr, repo, digest string) *slowPull {
	t.Helper()
	// No client timeout: the body is read over seconds on purpose; every
	// read loop below is bounded instead.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/v2/" + repo + "/blobs/" + digest)
	if err != nil {
		t.Fatalf("GET blob: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %s", resp.Status)
	}
	h := sha256.New()
	return &slowPull{
		t: t, resp: resp, hash: h, total: resp.ContentLength, buf: make([]byte, 32<<10),
		sum: func() string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) },
	}
}

// readSlowly reads up to pieces pieces of 32 KiB, sleeping pause after
// each. It fails the test on a read error.
func (p *slowPull) readSlowly(pieces int, pause time.Duration) {
	p.t.Helper()
	for i := 0; i < pieces && p.n < p.total; i++ {
		k, err := io.ReadFull(p.resp.Body, p.buf[:min(int64(len(p.buf)), p.total-p.n)])
		p.hash.Write(p.buf[:k])
		p.n += int64(k)
		if err != nil {
			p.t.Fatalf("slow pull after %d bytes: %v", p.n, err)
		}
		time.Sleep(pause)
	}
}

// finish reads the rest at full speed and returns the digest of
// everything read, or the read error.
func (p *slowPull) finish() (string, error) {
	k, err := io.Copy(p.hash, p.resp.Body)
	p.n += k
	if err != nil {
		return "", err
	}
	if p.n != p.total {
		return "", fmt.Errorf("read %d bytes, Content-Length %d", p.n, p.total)
	}
	return p.sum(), nil
}

// waitFor polls cond every 50ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// treeSnapshot lists every file and folder under dir with its size (and,
// for small files, content), relative to dir.
func treeSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && d.Name() == "_regctl" && filepath.Base(filepath.Dir(p)) == "v2" {
			// The daemon's heartbeats live here and change on their own.
			return filepath.SkipDir
		}
		if d.IsDir() {
			snap[rel+"/"] = "dir"
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fmt.Sprintf("%d bytes", fi.Size())
		if fi.Size() <= 256 {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		snap[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffSnapshots describes what changed between two snapshots.
func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			d = append(d, "added "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		}
	}
	return d
}

// writeFile replaces path with content in place (not atomically), as an
// editor would.
func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// startServeT is startServe that also drops go-containerregistry's idle
// connections before the daemon is stopped. The client's transport may
// dial a spare connection it never sends a request on; http.Server's
// Shutdown counts such a connection as active for its first 5 seconds,
// which would stretch every stop to 5 s (and into testtools' SIGKILL).
func startServeT(t *testing.T, config, addr string) *testtools.Process {
	t.Helper()
	p := startServe(t, config, addr)
	t.Cleanup(closeClientConns)
	return p
}

// closeClientConns closes go-containerregistry's idle connections.
func closeClientConns() {
	if tr, ok := remote.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// junitSuites is the root of the conformance suite's junit.xml.
type junitSuites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
}

// conformanceRun is one run of the OCI conformance suite: the counts of
// its junit.xml, its output and its exit status.
type conformanceRun struct {
	junitSuites
	Out []byte
	Err error // nil when the suite exited 0
}

func (r conformanceRun) String() string {
	return fmt.Sprintf("%d tests, %d failures, %d errors, %d skipped", r.Tests, r.Failures, r.Errors, r.Skipped)
}

// runConformance runs the whole OCI distribution-spec conformance suite
// against the plain-HTTP registry at addr and returns its junit counts.
// It fails the test only when the suite wrote no readable junit.xml.
func runConformance(t *testing.T, addr string) conformanceRun {
	t.Helper()
	suite := testtools.Tool(t, "conformance")
	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_RESULTS_DIR="+results,
	)
	out, runErr := cmd.CombinedOutput()
	b, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("no junit.xml (%v); suite said (%v):\n%s", err, runErr, tail(out, 4000))
	}
	r := conformanceRun{Out: out, Err: runErr}
	if err := xml.Unmarshal(b, &r.junitSuites); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	return r
}

// requireAllPass fails the test unless every test passed and none was
// skipped, logging the failed tests' names.
func (r conformanceRun) requireAllPass(t *testing.T) {
	t.Helper()
	t.Logf("OCI conformance: %s", r)
	if r.Failures+r.Errors+r.Skipped > 0 || r.Tests < 800 || r.Err != nil {
		for _, line := range regexp.MustCompile(`(?m)^.*failed test.*$`).FindAll(r.Out, 60) {
			t.Log(string(line))
		}
		t.Errorf("want every test to pass and none skipped; suite exit: %v\n%s", r.Err, tail(r.Out, 4000))
	}
}
