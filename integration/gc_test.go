package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"regctl/internal/testtools"
)

// renderedSite is a regctl serve running the config reconfigure renders
// (GitLab token auth), with a token for the tests' pushes.
type renderedSite struct {
	dir, addr, settings string
	env                 []string
	daemon              *testtools.Process
	token               string
	opt                 remote.Option
}

// newRenderedSite writes settings (with extra appended), reconfigures,
// starts the daemon and mints a 10-minute token for scopes.
func newRenderedSite(t *testing.T, extra string, scopes ...string) *renderedSite {
	t.Helper()
	s := &renderedSite{dir: t.TempDir(), addr: testtools.FreeAddr(t)}
	s.settings = filepath.Join(s.dir, "regctl.toml")
	src := "data_dir = \"data\"\n[registry]\nregistry_http_addr = \"" + s.addr + "\"\n" + extra
	if err := os.WriteFile(s.settings, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	s.env = cleanEnv("REGCTL_CLUSTER_HEARTBEAT=500ms") // a node is gone after 3 missed beats: room for a loaded machine
	if out, code := runRegctl(t, s.dir, s.env, "--settings", s.settings, "reconfigure"); code != 0 {
		t.Fatalf("reconfigure: exit %d\n%s", code, out)
	}
	config := filepath.Join(s.dir, "data", "registry", "config.yml")
	cmd := exec.Command(regctlBinary(t), "serve", config)
	cmd.Env = s.env
	s.daemon = testtools.StartCmd(t, s.addr, cmd)
	t.Cleanup(closeClientConns)
	args := []string{"--settings", s.settings, "token", "issue", "--ttl", "10m"}
	for _, sc := range scopes {
		args = append(args, "--scope", sc)
	}
	tok, code := runRegctl(t, s.dir, s.env, args...)
	if code != 0 {
		t.Fatalf("token issue: exit %d\n%s", code, tok)
	}
	s.token = strings.TrimSpace(tok)
	s.opt = remote.WithAuth(&authn.Bearer{Token: s.token})
	return s
}

// TestGarbageCollectWithRunningDaemon is gitlab-ctl registry-garbage-collect
// -m without the downtime: the daemon keeps serving pulls, switches to
// read-only for the run, and afterwards answers 404 for what was deleted
// while every tagged image and its signature still pull.
func TestGarbageCollectWithRunningDaemon(t *testing.T) {
	site := newRenderedSite(t, "", "repository:team/app:pull,push,delete")
	dir, addr, settings, env, daemon, tok, opt := site.dir, site.addr, site.settings, site.env, site.daemon, site.token, site.opt

	// v1 is pushed, then overwritten: the first image becomes untagged.
	old, cur := randomImage(t, 1024, 2), randomImage(t, 1024, 2)
	ref := mustRef(t, addr+"/team/app:v1")
	for _, img := range []v1.Image{old, cur} {
		if err := remote.Write(ref, img, opt); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	oldDigest, _ := old.Digest()
	oldLayers, _ := old.Layers()
	oldLayer, _ := oldLayers[0].Digest()

	// A signature of the current image, pushed by digest (untagged).
	curDesc, err := remote.Head(ref, opt)
	if err != nil {
		t.Fatal(err)
	}
	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.dev.cosign.artifact.sig.v1+json")
	sig, _ = mutate.Append(sig, mutate.Addendum{Layer: static.NewLayer([]byte("sig"), "application/vnd.dev.cosign.simplesigning.v1+json")})
	sig = mutate.Subject(sig, *curDesc).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(mustRef(t, addr+"/team/app@"+sigDigest.String()), sig, opt); err != nil {
		t.Fatalf("push signature: %v", err)
	}

	out, code := runRegctl(t, dir, env, "--settings", settings, "-o", "json", "registry-garbage-collect", "-m")
	if code != 0 {
		t.Fatalf("registry-garbage-collect -m: exit %d\n%s", code, out)
	}
	var res struct {
		Report struct {
			ManifestsDeleted, BlobsDeleted, ReferrersKept int
		} `json:"report"`
		Daemons *int `json:"daemons_read_only"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, out)
	}
	if res.Daemons == nil || *res.Daemons != 1 {
		got := "none"
		if res.Daemons != nil {
			got = fmt.Sprint(*res.Daemons)
		}
		t.Errorf("daemons_read_only = %s, want 1 (the running daemon acknowledged)\n%s", got, out)
	}
	if res.Report.ManifestsDeleted != 1 || res.Report.ReferrersKept != 1 || res.Report.BlobsDeleted == 0 {
		t.Errorf("report %+v: want the overwritten manifest deleted, the signature kept, blobs freed", res.Report)
	}
	if !strings.Contains(daemon.Output(), "maintenance") {
		t.Errorf("daemon log shows no maintenance switch:\n%s", daemon.Output())
	}

	// What was deleted is gone for the running daemon too.
	head := func(path string) int {
		resp, _ := do(t, http.MethodHead, addr, path, nil, map[string]string{"Authorization": "Bearer " + strings.TrimSpace(tok)})
		return resp.StatusCode
	}
	if s := head("/v2/team/app/manifests/" + oldDigest.String()); s != http.StatusNotFound {
		t.Errorf("deleted manifest answers %d, want 404", s)
	}
	if s := head("/v2/team/app/blobs/" + oldLayer.String()); s != http.StatusNotFound {
		t.Errorf("deleted layer answers %d, want 404", s)
	}
	// The tagged image and its signature still pull completely.
	for _, r := range []string{addr + "/team/app:v1", addr + "/team/app@" + sigDigest.String()} {
		img, err := remote.Image(mustRef(t, r), opt)
		if err != nil {
			t.Fatalf("pull %s: %v", r, err)
		}
		if err := pullAllLayers(img); err != nil {
			t.Errorf("pull %s: %v", r, err)
		}
	}
	// The lease is released: pushes work again.
	if err := remote.Write(mustRef(t, addr+"/team/app:v2"), old, opt); err != nil {
		t.Errorf("push after GC: %v", err)
	}
}

func pullAllLayers(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestGarbageCollectKeepsManifestTaggedElsewherePullable: with -m, an
// index untagged in team/a but tagged in team/b stays in team/a (its
// digest is marked), children and all. Distribution judges team/a's
// layer links before team/b marks the children's blobs, and deletes
// them: the index then answers "exists" in team/a but does not pull
// there, and a client pushing it again skips the children (HEAD 200),
// so that accepted push does not pull either. regctl keeps the links.
func TestGarbageCollectKeepsManifestTaggedElsewherePullable(t *testing.T) {
	t.Parallel()
	addr := testtools.FreeAddr(t)
	config := serveConfig(t, addr, "")
	cmd := exec.Command(regctlBinary(t), "serve", config)
	cmd.Env = cleanEnv(gcHeartbeat)
	testtools.StartCmd(t, addr, cmd)
	t.Cleanup(closeClientConns)

	c1, c2 := randomImage(t, 512, 2), randomImage(t, 512, 2)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: c1}, mutate.IndexAddendum{Add: c2})
	for _, ref := range []string{"/team/a:latest", "/team/b:latest"} {
		if err := remote.WriteIndex(mustRef(t, addr+ref), idx); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	// team/a:latest moves on: the index is untagged in team/a (met
	// first), tagged in team/b.
	if err := remote.Write(mustRef(t, addr+"/team/a:latest"), randomImage(t, 512, 1)); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := runRegctlSplit(t, cleanEnv(gcHeartbeat), "-o", "json", "registry-garbage-collect", "-m", config)
	if code != 0 {
		t.Fatalf("registry-garbage-collect -m: exit %d\n%s%s", code, stdout, stderr)
	}
	var res gcResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, stdout)
	}
	// Two children, each a config and two layers: Distribution deletes
	// those six links in team/a.
	if rep := res.Report; rep.ManifestsDeleted != 0 || rep.LayerLinksDeleted != 0 || rep.LayerLinksKept != 6 {
		t.Errorf("deleted %d manifests and %d layer links, kept %d layer links Distribution deletes; want 0, 0, 6",
			rep.ManifestsDeleted, rep.LayerLinksDeleted, rep.LayerLinksKept)
	}

	// Pushed to team/a again, as a client does: the index and its
	// children exist there, so no blob goes up. It pulls completely.
	if err := remote.WriteIndex(mustRef(t, addr+"/team/a:again"), idx); err != nil {
		t.Fatalf("push team/a:again: %v", err)
	}
	got, err := remote.Index(mustRef(t, addr+"/team/a:again"))
	var im *v1.IndexManifest
	if err == nil {
		im, err = got.IndexManifest()
	}
	if err != nil {
		t.Fatalf("pull team/a:again: %v", err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("team/a:again has %d children, want 2", len(im.Manifests))
	}
	for _, m := range im.Manifests {
		pullComplete(t, addr+"/team/a@"+m.Digest.String())
	}
}
