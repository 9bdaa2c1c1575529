package reconfigure

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// withGitlabGroup makes gitlab.yml's group name for one test.
func withGitlabGroup(t *testing.T, name string) {
	t.Helper()
	old := gitlabGroup
	gitlabGroup = name
	t.Cleanup(func() { gitlabGroup = old })
}

// usableGroup is a group that exists on this machine and that this
// process may give files to; one other than the group its new files get
// when there is one, so that a file left in that group shows.
func usableGroup(t *testing.T) *user.Group {
	t.Helper()
	own := strconv.Itoa(os.Getegid())
	if os.Geteuid() == 0 {
		for _, name := range []string{"daemon", "bin", "sys", "adm", "users", "nogroup"} {
			if g, err := user.LookupGroup(name); err == nil && g.Gid != own {
				return g
			}
		}
	}
	ids, _ := os.Getgroups()
	for _, id := range ids {
		if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil && g.Gid != own {
			return g
		}
	}
	g, err := user.LookupGroupId(own)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func fileGid(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Gid)
}

// gitlab.yml holds notification_secret: owner only when the group GitLab
// reads it through does not exist, 0640 for that group when it does; a
// file from before either is fixed by the next run, and a run after
// that writes nothing.
func TestGitlabYMLModeAndGroup(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n[registry]\nnotification_secret = \"s3cret-for-gitlab\"\n")
	p := l.Resolve()
	gitlabResult := func(res *Result) FileResult {
		for _, f := range res.Files {
			if f.Path == p.GitlabYML {
				return f
			}
		}
		t.Fatalf("no gitlab.yml in %+v", res.Files)
		return FileResult{}
	}

	withGitlabGroup(t, "regctl-test-no-such-group")
	res, err := Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p.GitlabYML); st.Mode().Perm() != 0o600 {
		t.Errorf("no such group: mode %04o, want 0600", st.Mode().Perm())
	}
	if f := gitlabResult(res); f.Mode != 0o600 || f.Group != "" {
		t.Errorf("no such group: result %+v, want mode 0600 and no group", f)
	}

	g := usableGroup(t)
	withGitlabGroup(t, g.Name)
	res, err = Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p.GitlabYML); st.Mode().Perm() != 0o640 {
		t.Errorf("group %s: mode %04o, want 0640", g.Name, st.Mode().Perm())
	}
	if gid := fileGid(t, p.GitlabYML); strconv.Itoa(gid) != g.Gid {
		t.Errorf("group id %d, want %s (%s)", gid, g.Gid, g.Name)
	}
	f := gitlabResult(res)
	if f.Change != Updated || f.Mode != 0o640 || f.Group != g.Name || !strings.Contains(f.Note, "mode 0600 -> 0640") {
		t.Errorf("group %s: result %+v, want updated, 0640, the group and a mode note", g.Name, f)
	}

	res, err = Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := gitlabResult(res); f.Change != Unchanged {
		t.Errorf("third run: %+v, want unchanged", f)
	}

	// Given to another group by hand: the next run gives it back.
	if g.Gid != strconv.Itoa(os.Getegid()) {
		if err := os.Chown(p.GitlabYML, -1, os.Getegid()); err != nil {
			t.Fatal(err)
		}
		res, err = Run(l, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f := gitlabResult(res); f.Change != Updated || !strings.Contains(f.Note, "-> "+g.Name) {
			t.Errorf("after chgrp: %+v, want updated with a group note", f)
		}
		if gid := fileGid(t, p.GitlabYML); strconv.Itoa(gid) != g.Gid {
			t.Errorf("after chgrp and a run: group id %d, want %s", gid, g.Gid)
		}
	}
}
