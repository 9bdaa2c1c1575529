package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"regctl/internal/testtools"
)

// TestDaemonLogs runs the daemon with JSON logs at debug level, with
// every kind of secret in play, and checks: each line is JSON, each
// request has an access line with its own request id, no secret appears
// anywhere, and SIGHUP with a higher level silences the access lines.
func TestDaemonLogs(t *testing.T) {
	const (
		password    = "pw-SECRET-b4s1c"
		bogusToken  = "eyJhbGciOiJSUzI1NiJ9.SECRET-t0ken.sig"
		httpSecret  = "http-SECRET-5ecret"
		notifyAuth  = "Bearer notify-SECRET-h3ader"
		urlPassword = "url-SECRET-pa55"
		querySecret = "q-SECRET-v4lue"
	)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	addr, hookAddr := testtools.FreeAddr(t), testtools.FreeAddr(t)
	config := func(level string) string {
		return "version: 0.1\nlog:\n  level: " + level + "\n  formatter: json\n  fields:\n    service: registry\n" +
			"storage:\n  filesystem:\n    rootdirectory: " + filepath.Join(dir, "root") + "\n  delete:\n    enabled: true\n" +
			"auth:\n  htpasswd:\n    realm: test\n    path: " + htpasswd + "\n" +
			"notifications:\n  endpoints:\n    - name: hook\n      url: http://user:" + urlPassword + "@" + hookAddr + "/events\n" +
			"      headers:\n        Authorization: [\"" + notifyAuth + "\"]\n      backoff: 50ms\n      maxretries: 1\n" +
			"http:\n  addr: " + addr + "\n  secret: " + httpSecret + "\n"
	}
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(config("debug")), 0o600)
	p := startServeT(t, cfg, addr)

	request := func(path string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	basic := func(pw string) map[string]string {
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		req.SetBasicAuth("alice", pw)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	codes := []int{
		request("/v2/", basic(password)),
		request("/v2/", basic(password+"-wrong")),
		request("/v2/", map[string]string{"Authorization": "Bearer " + bogusToken}),
		request("/v2/team/app/tags/list?n=10&token="+querySecret, basic(password)),
		request("/v2/team/app/blobs/sha256:"+strings.Repeat("0", 64), basic(password)),
	}
	// A push sends an event; the endpoint is down, so delivery fails and
	// is logged, URL and all.
	blob := []byte("logged blob")
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v2/team/app/blobs/uploads/?digest="+sha256Digest(blob), bytes.NewReader(blob))
	req.Header.Set("Authorization", basic(password)["Authorization"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	codes = append(codes, resp.StatusCode)
	if codes[0] != 200 || codes[1] != 401 || codes[2] != 401 || codes[5] != 201 {
		t.Fatalf("status codes = %v", codes)
	}
	waitFor(t, 10*time.Second, "6 access lines and a failed delivery", func() bool {
		return len(accessLines(t, p.Output())) == 6 && strings.Contains(p.Output(), "notification endpoint failing")
	})

	// SIGHUP with level warn: requests are served, not logged.
	os.WriteFile(cfg, []byte(config("warn")), 0o600)
	syscall.Kill(p.Pid(), syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the level change", func() bool { return strings.Contains(p.Output(), "log level changed") })
	request("/v2/", basic(password))
	request("/v2/", basic(password))
	p.Stop() // drains: the access lines of those requests are written by now

	out := p.Output()
	lines := accessLines(t, out)
	if len(lines) != 6 {
		t.Errorf("%d access lines after SIGHUP to warn, want still 6", len(lines))
	}
	ids := map[string]bool{}
	for i, l := range lines {
		id, _ := l["request_id"].(string)
		if len(id) < 16 || ids[id] {
			t.Errorf("access line %d: request_id %q missing or repeated", i, id)
		}
		ids[id] = true
		if l["service"] != "registry" || l["method"] == nil || l["status"] == nil || l["duration"] == nil {
			t.Errorf("access line %d lacks fields: %v", i, l)
		}
	}
	if lines[0]["user"] != "alice" || lines[1]["status"] != float64(401) {
		t.Errorf("first lines: %v / %v", lines[0], lines[1])
	}
	for _, secret := range []string{password, bogusToken, "SECRET-t0ken", httpSecret, notifyAuth, urlPassword, querySecret,
		strings.TrimPrefix(basic(password)["Authorization"], "Basic ")} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
	if !strings.Contains(out, "SECRET") {
		return
	}
	t.Errorf("some secret reached the log:\n%s", out)
}

// accessLines checks every line of a JSON log and returns the access
// lines (msg "request").
func accessLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}
