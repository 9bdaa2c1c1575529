package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// daemon is `regctl serve`: the packages only the daemon may depend on.
var daemon = []string{"regctl/pkg/serve", "regctl/pkg/registryd"}

// nonServing are the packages that hold the logic of the commands that
// never serve. Each is named so that a move or a rename fails here
// rather than silently leaving the rule unchecked.
var nonServing = []string{
	"regctl/pkg/gc",          // registry-garbage-collect: the collector
	"regctl/pkg/gcjob",       // registry-garbage-collect: the collector as a maintenance job
	"regctl/pkg/cleanup",     // registry-cleanup
	"regctl/pkg/usage",       // registry-usage
	"regctl/pkg/migrate",     // migrate-storage, its cutover
	"regctl/pkg/readonly",    // registry-readonly
	"regctl/pkg/rollout",     // reconfigure's render-and-apply
	"regctl/pkg/service",     // start, stop, restart, status, tail; reload or restart
	"regctl/pkg/reconfigure", // reconfigure
	"regctl/pkg/settings",    // regctl.toml, its in-place edits
	"regctl/pkg/maintenance", // the maintenance lease the jobs take
	"regctl/pkg/blobcache",   // the cache a job flushes
	"regctl/pkg/configsrc",   // which config.yml a command works on
	"regctl/pkg/pidfile",     // finding the daemon to reload
}

// cmdServeFiles are the files of cmd/ that may import the daemon.
var cmdServeFiles = []string{"serve.go"}

func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// pkgImports maps each of the dependencies of pkg (itself included) to
// its direct imports, as `go list -deps` lists them; with tests, the
// dependencies of pkg's tests too (their test variants are named
// "path [pkg.test]").
func pkgImports(t *testing.T, pkg string, tests bool) map[string][]string {
	t.Helper()
	args := []string{"-deps", "-json=ImportPath,Imports"}
	if tests {
		args = append(args, "-test")
	}
	out := goList(t, append(args, pkg)...)
	m := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		m[p.ImportPath] = p.Imports
	}
	return m
}

// chain is the shortest import chain from pkg to target, "" when there
// is none.
func chain(imports map[string][]string, pkg, target string) string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == target {
			path := []string{cur}
			for p := prev[cur]; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return strings.Join(path, " -> ")
		}
		for _, next := range imports[cur] {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return ""
}

// TestNonServingCommandsDoNotDependOnTheDaemon runs `go list -deps` on
// each package of a command that never serves and fails when the daemon
// is among its dependencies, naming the import chain.
func TestNonServingCommandsDoNotDependOnTheDaemon(t *testing.T) {
	t.Parallel()
	for _, pkg := range nonServing {
		imports := pkgImports(t, pkg, false)
		for _, d := range daemon {
			if _, ok := imports[d]; ok {
				t.Errorf("%s depends on the daemon: %s", pkg, chain(imports, pkg, d))
			}
		}
	}
}

// TestOnlyTheDaemonDependsOnTheDaemon extends the rule to every package
// under pkg/ and internal/ but the daemon's own, so that a package added
// later is held to it too.
func TestOnlyTheDaemonDependsOnTheDaemon(t *testing.T) {
	t.Parallel()
	out := goList(t, "-json=ImportPath,Deps", "regctl/pkg/...", "regctl/internal/...")
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		seen++
		if slices.Contains(daemon, p.ImportPath) {
			continue
		}
		for _, d := range daemon {
			if d == "regctl/pkg/registryd" && p.ImportPath == "regctl/pkg/serve" {
				continue
			}
			if slices.Contains(p.Deps, d) {
				t.Errorf("%s depends on %s, which only regctl serve may", p.ImportPath, d)
			}
		}
	}
	if seen < len(nonServing) {
		t.Fatalf("go list found %d packages", seen)
	}
}

// TestOnlyServeGoImportsTheDaemonInCmd: cmd/ is one package, so go list
// cannot tell its commands apart; the imports of each file can. Only
// the serve command's file may import the daemon (tests may: they run
// daemons to test against).
func TestOnlyServeGoImportsTheDaemonInCmd(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "cmd", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/*.go: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || slices.Contains(cmdServeFiles, filepath.Base(f)) {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if slices.Contains(daemon, path) {
				t.Errorf("cmd/%s imports %s: only %v may; move the logic to a package of its own", filepath.Base(f), path, cmdServeFiles)
			}
		}
	}
}
