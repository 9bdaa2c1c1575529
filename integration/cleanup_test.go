package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regctl/internal/testtools"
)

// TestRegistryCleanupEndToEnd runs registry-cleanup against a running
// regctl serve with GitLab token auth (the rendered config), on images
// pushed with chosen created dates, then registry-usage and GC -m.
func TestRegistryCleanupEndToEnd(t *testing.T) {
	site := newRenderedSite(t, `
[[registry.cleanup_policies]]
name = "team"
repositories = ["team/**"]
enabled = true
name_regex = "v.*"
name_regex_keep = "v0"
keep_n = 1
older_than = "30d"
`, "repository:team/app:pull,push", "repository:other/x:pull,push")
	dir, addr, settings, env, opt := site.dir, site.addr, site.settings, site.env, site.opt
	root := filepath.Join(dir, "data", "gitlab-rails", "shared", "registry")

	now := time.Now()
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }
	image := func(created time.Time) v1.Image {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.CreatedAt(img, v1.Time{Time: created})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	push := func(repoTag string, img v1.Image) {
		if err := remote.Write(mustRef(t, addr+"/"+repoTag), img, opt); err != nil {
			t.Fatalf("push %s: %v", repoTag, err)
		}
	}
	v1img := image(ago(300))
	push("team/app:latest", image(ago(400)))
	push("team/app:v0", image(ago(400)))         // keep regex
	push("team/app:v1", v1img)                   // deleted
	push("team/app:release", v1img)              // shares v1's manifest; does not match
	push("team/app:v2", image(ago(200)))         // deleted
	push("team/app:v3", image(ago(10)))          // too young
	push("team/app:v4", image(ago(5)))           // too young
	push("team/app:vnodate", image(time.Time{})) // no date: sorts newest, kept by keep_n
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(ago(260)), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: image(ago(250)), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(mustRef(t, addr+"/team/app:vmulti"), idx, opt); err != nil {
		t.Fatalf("push index: %v", err)
	}
	push("other/x:v1", image(ago(300))) // no policy applies

	wantReasons := map[string]string{
		"latest": "latest", "v0": "keep regex", "v1": "deleted", "release": "no match", "v2": "deleted",
		"v3": "too young", "v4": "too young", "vnodate": "among the newest N", "vmulti": "no date",
	}
	type plan struct {
		Decisions []struct {
			Name   string `json:"name"`
			Reason string `json:"reason"`
			Delete bool   `json:"delete"`
			Index  bool   `json:"index"`
		} `json:"decisions"`
		Steps []struct {
			Tags []string `json:"tags"`
		} `json:"steps"`
	}
	type repoResult struct {
		Name    string   `json:"name"`
		Plan    *plan    `json:"plan"`
		Deleted []string `json:"deleted"`
		Error   string   `json:"error"`
	}
	reasons := func(p *plan) map[string]string {
		out := map[string]string{}
		for _, d := range p.Decisions {
			out[d.Name] = d.Reason
		}
		return out
	}
	cleanup := func(args ...string) (string, int) {
		return runRegctl(t, dir, env, append([]string{"--settings", settings, "-o", "json", "registry-cleanup"}, args...)...)
	}

	// 1. A dry run plans and changes nothing.
	before := treeDigest(t, root)
	out, code := cleanup("--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	var dry struct {
		DryRun       bool          `json:"dry_run"`
		Repositories []*repoResult `json:"repositories"`
		Skipped      int           `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !dry.DryRun || len(dry.Repositories) != 1 || dry.Repositories[0].Name != "team/app" || dry.Skipped != 1 {
		t.Fatalf("dry run: %s", out)
	}
	if got := reasons(dry.Repositories[0].Plan); !maps.Equal(got, wantReasons) {
		t.Errorf("dry run reasons:\n got %v\nwant %v", got, wantReasons)
	}
	if after := treeDigest(t, root); after != before {
		t.Errorf("the dry run changed the storage")
	}

	// On a terminal (script(1) gives it one) a progress bar is drawn on
	// stderr; piped, as above, there is none.
	if strings.Contains(out, "\x1b[K") {
		t.Errorf("progress drawn without a terminal:\n%q", out)
	}
	tty := onTerminal(t, dir, env, "--settings", settings, "registry-cleanup", "--dry-run")
	if !strings.Contains(tty, "\r\x1b[Krepositories") || !strings.Contains(tty, "100%  1/1") || !strings.Contains(tty, "dry run: nothing deleted") {
		t.Errorf("registry-cleanup on a terminal drew no progress:\n%q", tty)
	}

	// 2. --explain shows the steps and the reasons, with dates.
	out, code = cleanup("--explain", "team/app")
	if code != 0 {
		t.Fatalf("explain: exit %d\n%s", code, out)
	}
	var ex repoResult
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := reasons(ex.Plan); !maps.Equal(got, wantReasons) {
		t.Errorf("explain reasons:\n got %v\nwant %v", got, wantReasons)
	}
	if n := len(ex.Plan.Steps); n != 4 || !slices.Equal(ex.Plan.Steps[3].Tags, []string{"v2", "v1"}) {
		t.Errorf("explain steps: %+v", ex.Plan.Steps)
	}
	if text, _ := runRegctl(t, dir, env, "--settings", settings, "registry-cleanup", "--explain", "team/app"); !strings.Contains(text, "among the newest N") || !strings.Contains(text, "(multi-arch)") {
		t.Errorf("explain text:\n%s", text)
	}
	if after := treeDigest(t, root); after != before {
		t.Errorf("--explain changed the storage")
	}

	// 3. The run deletes exactly the plan.
	out, code = cleanup()
	if code != 0 {
		t.Fatalf("cleanup: exit %d\n%s", code, out)
	}
	var run struct {
		Repositories []*repoResult `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := run.Repositories[0].Deleted; !slices.Equal(d, []string{"v1", "v2"}) {
		t.Errorf("deleted %v, want [v1 v2]", d)
	}
	tags, err := remote.List(mustRef(t, addr+"/team/app").Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"latest", "release", "v0", "v3", "v4", "vmulti", "vnodate"}; !slices.Equal(tags, want) {
		t.Errorf("tags after cleanup %v, want %v", tags, want)
	}
	// Kept tags pull completely, release (v1's manifest) included.
	for _, tag := range []string{"latest", "release", "v0", "v3", "v4", "vnodate"} {
		img, err := remote.Image(mustRef(t, addr+"/team/app:"+tag), opt)
		if err == nil {
			err = pullAllLayers(img)
		}
		if err != nil {
			t.Errorf("pull %s: %v", tag, err)
		}
	}
	ix, err := remote.Index(mustRef(t, addr+"/team/app:vmulti"), opt)
	if err == nil {
		err = verifyIndex(ix)
	}
	if err != nil {
		t.Errorf("pull vmulti: %v", err)
	}
	if _, err := remote.Image(mustRef(t, addr+"/other/x:v1"), opt); err != nil {
		t.Errorf("a repository without a policy lost its tag: %v", err)
	}

	// 4. registry-usage predicts what GC -m frees, to the byte.
	out, code = runRegctl(t, dir, env, "--settings", settings, "-o", "json", "registry-usage")
	if code != 0 {
		t.Fatalf("registry-usage: exit %d\n%s", code, out)
	}
	var use struct {
		Store struct {
			GCUntagged struct {
				Blobs int   `json:"blobs"`
				Bytes int64 `json:"bytes"`
			} `json:"gc_untagged"`
		} `json:"store"`
	}
	if err := json.Unmarshal([]byte(out), &use); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, code = runRegctl(t, dir, env, "--settings", settings, "-o", "json", "registry-garbage-collect", "-m")
	if code != 0 {
		t.Fatalf("registry-garbage-collect -m: exit %d\n%s", code, out)
	}
	var gcRes struct {
		Report struct {
			BlobsDeleted int
			BytesFreed   int64
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &gcRes); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if use.Store.GCUntagged.Bytes == 0 || gcRes.Report.BytesFreed != use.Store.GCUntagged.Bytes || gcRes.Report.BlobsDeleted != use.Store.GCUntagged.Blobs {
		t.Errorf("registry-usage predicted %d bytes in %d blobs; GC -m freed %d bytes in %d blobs",
			use.Store.GCUntagged.Bytes, use.Store.GCUntagged.Blobs, gcRes.Report.BytesFreed, gcRes.Report.BlobsDeleted)
	}
	// release still pulls after GC: deleting v1 by tag kept its manifest.
	img, err := remote.Image(mustRef(t, addr+"/team/app:release"), opt)
	if err == nil {
		err = pullAllLayers(img)
	}
	if err != nil {
		t.Errorf("pull release after GC: %v", err)
	}
}

// onTerminal runs regctl with a pseudo-terminal as stdin, stdout and
// stderr, through script(1) (util-linux), and returns what it wrote.
func onTerminal(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	script := testtools.Tool(t, "script") // util-linux
	quoted := []string{shellQuote(regctlBinary(t))}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qefc", strings.Join(quoted, " "), "/dev/null")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script regctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// treeDigest hashes every file's path and content below root.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.Contains(rel, "_regctl") || strings.Contains(rel, "_uploads") {
			return nil // heartbeats and uploads move by themselves
		}
		h.Write([]byte(rel + "\x00"))
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
