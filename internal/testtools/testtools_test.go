package testtools

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("go.mod in RepoRoot: %v", err)
	}
	if !strings.HasPrefix(string(data), "module regctl\n") {
		t.Fatalf("RepoRoot %s holds another module's go.mod:\n%s", root, data)
	}
	if wd, _ := os.Getwd(); wd != filepath.Join(root, "internal", "testtools") {
		t.Errorf("RepoRoot = %s; working directory %s is not <root>/internal/testtools", root, wd)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q, want 127.0.0.1:PORT (%v)", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port from FreeAddr is not free: %v", err)
	}
	_ = l.Close()
}

func TestToolFindsProgramOnPath(t *testing.T) {
	p := Tool(t, "sh")
	if !filepath.IsAbs(p) || !isExecutable(p) {
		t.Fatalf("Tool(sh) = %q, want an absolute path to an executable", p)
	}
}

func TestToolPrefersRepoLocalFolder(t *testing.T) {
	local := filepath.Join(RepoRoot(t), ".tools", "bin", DistributionTool)
	if !isExecutable(local) {
		t.Skipf("%s not installed; run %s", local, InstallHint)
	}
	// Another "registry" earlier on PATH must not win over .tools/bin.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DistributionTool), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if got := Tool(t, DistributionTool); got != local {
		t.Fatalf("Tool(%s) = %s, want %s", DistributionTool, got, local)
	}
}

func TestToolMissing(t *testing.T) {
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{
		{ci: "true", wantFatal: true},
		{ci: "1", wantFatal: true},
		{ci: "TRUE", wantFatal: true},
		{ci: "", wantFatal: false},
		{ci: "false", wantFatal: false},
		{ci: "0", wantFatal: false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			rec := runRecording(t, func(tb testing.TB) { Tool(tb, "regctl-no-such-tool") })
			msg := rec.skipped
			if tc.wantFatal {
				msg = rec.fatal
			}
			if msg == "" {
				t.Fatalf("want a %s; got fatal=%q skip=%q", map[bool]string{true: "Fatalf", false: "Skipf"}[tc.wantFatal], rec.fatal, rec.skipped)
			}
			for _, want := range []string{"regctl-no-such-tool", InstallHint} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
		})
	}
}

// recordingTB records Fatalf and Skipf instead of ending the real test.
type recordingTB struct {
	testing.TB
	fatal, skipped string
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runRecording runs f with a recordingTB on its own goroutine, so that the
// recorded Fatalf and Skipf can stop f as the real ones would.
func runRecording(t *testing.T, f func(testing.TB)) *recordingTB {
	rec := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec
}

// TestOneReaderOfCI keeps InCI the only Go code that reads the variable CI,
// so that every check reads it the same way (CI=1 and CI=true alike). The
// shell side only sets it (.ci/run).
func TestOneReaderOfCI(t *testing.T) {
	root := RepoRoot(t)
	readers := []string{`Getenv("CI")`, `LookupEnv("CI")`}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case d.IsDir() || !strings.HasSuffix(path, ".go"):
			return nil
		case rel == filepath.Join("internal", "testtools", "testtools.go"), rel == filepath.Join("internal", "testtools", "testtools_test.go"):
			return nil // InCI itself, and this test's list of readers
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, r := range readers {
			if strings.Contains(string(data), r) {
				t.Errorf("%s reads CI with %s; use testtools.InCI", rel, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadmeLayoutListsEveryPackage keeps the README's Layout section
// complete: every folder that holds Go code has its line there.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	root := RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	_, block, _ := strings.Cut(layout, "```\n")
	block, _, _ = strings.Cut(block, "```")
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		if dir != "." && !listed[filepath.ToSlash(dir)] {
			t.Errorf("README Layout has no line for %s", filepath.ToSlash(dir))
			listed[filepath.ToSlash(dir)] = true // once per folder
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FreeAddr never hands out one port twice, so parallel tests do not race
// for a port the kernel gave back.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 300 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
}
