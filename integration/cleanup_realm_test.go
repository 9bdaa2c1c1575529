package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestRegistryCleanupAgainstTokenRealm: registry-cleanup --registry
// --username --password-stdin against a real regctl serve with token
// auth, whose realm checks Basic credentials and grants the scopes asked
// for as GitLab's /jwt/auth does, in tokens minted as GitLab mints them.
func TestRegistryCleanupAgainstTokenRealm(t *testing.T) {
	realm := newTestRealm(t)
	site := startRealmSite(t, realm, `
[[registry.cleanup_policies]]
name = "team"
repositories = ["team/**"]
enabled = true
name_regex = "v.*"
keep_n = 2
`)
	writer := remote.WithAuth(&authn.Basic{Username: "writer", Password: "writer-pass"})
	now := time.Now()
	for i, tag := range []string{"v1", "v2", "v3", "v4"} {
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		// v1 oldest, v4 newest.
		img, err = mutate.CreatedAt(img, v1.Time{Time: now.Add(time.Duration(i-10) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(mustRef(t, site.addr+"/team/app:"+tag), img, writer); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
	}
	tags := func() []string {
		t.Helper()
		got, err := remote.List(mustRef(t, site.addr+"/team/app").Context(), writer)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := []string{"v1", "v2", "v3", "v4"}
	cleanup := func(user, password string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, regctlBinary(t), append([]string{"--settings", site.settings, "-o", "json", "registry-cleanup",
			"--registry", "http://" + site.addr, "--username", user, "--password-stdin"}, args...)...)
		cmd.Dir, cmd.Env = site.dir, cleanEnv()
		cmd.Stdin = strings.NewReader(password + "\n")
		out, _ := cmd.Output() // the exit code says how it went
		if ctx.Err() != nil || cmd.ProcessState == nil {
			t.Fatalf("registry-cleanup as %s: %v", user, ctx.Err())
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	type report struct {
		DryRun       bool `json:"dry_run"`
		Repositories []struct {
			Name    string            `json:"name"`
			Deleted []string          `json:"deleted"`
			Failed  map[string]string `json:"failed"`
			Error   string            `json:"error"`
			Plan    *struct {
				Decisions []struct {
					Name   string `json:"name"`
					Delete bool   `json:"delete"`
				} `json:"decisions"`
			} `json:"plan"`
		} `json:"repositories"`
	}
	parse := func(out string) report {
		t.Helper()
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Repositories) != 1 || r.Repositories[0].Name != "team/app" {
			t.Fatalf("registry-cleanup output (%v):\n%s", err, out)
		}
		return r
	}

	// Wrong password: the realm refuses, nothing is done.
	if out, code := cleanup("admin", "wrong", "--dry-run"); code == 0 {
		t.Errorf("a wrong password: exit 0\n%s", out)
	}

	// Dry run as admin: the plan, nothing deleted.
	out, code := cleanup("admin", "admin-pass", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	r := parse(out)
	var plan []string
	for _, d := range r.Repositories[0].Plan.Decisions {
		if d.Delete {
			plan = append(plan, d.Name)
		}
	}
	if !r.DryRun || !slices.Equal(plan, []string{"v1", "v2"}) {
		t.Errorf("dry run planned %v, want [v1 v2]\n%s", plan, out)
	}
	if got := tags(); !slices.Equal(got, all) {
		t.Fatalf("tags after the dry run: %v", got)
	}

	// A user whose tokens grant no delete: every delete is refused by
	// the registry, the exit code says so, and no tag goes.
	out, code = cleanup("auditor", "auditor-pass")
	if code != 1 {
		t.Errorf("cleanup as auditor: exit %d, want 1\n%s", code, out)
	}
	if rr := parse(out).Repositories[0]; len(rr.Deleted) != 0 || !strings.Contains(rr.Error, "repository:team/app:delete") {
		t.Errorf("cleanup as auditor: %s", out)
	}
	if got := tags(); !slices.Equal(got, all) {
		t.Fatalf("tags after a cleanup without delete rights: %v", got)
	}

	// The real run as admin deletes exactly the plan.
	out, code = cleanup("admin", "admin-pass")
	if code != 0 {
		t.Fatalf("cleanup: exit %d\n%s", code, out)
	}
	if d := parse(out).Repositories[0].Deleted; !slices.Equal(d, []string{"v1", "v2"}) {
		t.Errorf("deleted %v, want [v1 v2]", d)
	}
	if got := tags(); !slices.Equal(got, []string{"v3", "v4"}) {
		t.Errorf("tags after cleanup: %v, want [v3 v4]", got)
	}
	for _, tag := range []string{"v3", "v4"} {
		img, err := remote.Image(mustRef(t, site.addr+"/team/app:"+tag), writer)
		if err == nil {
			err = pullAllLayers(img)
		}
		if err != nil {
			t.Errorf("pull %s after cleanup: %v", tag, err)
		}
	}

	// The tokens came from the realm, for admin's Basic credentials,
	// with the scopes the run needs.
	var asked []string
	for _, req := range realm.seen() {
		if req.User == "admin" {
			asked = append(asked, req.Scopes...)
		}
	}
	for _, want := range []string{"registry:catalog:*", "repository:team/app:pull", "repository:team/app:delete"} {
		if !slices.Contains(asked, want) {
			t.Errorf("the realm was never asked for %s by admin: %v", want, asked)
		}
	}
}
