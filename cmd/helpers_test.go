package cmd

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is one in-process regctl run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "--- stderr\n" + r.stderr
}

// regctl runs the command tree in-process with buffers.
func regctl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustCode runs regctl and fails the test unless it exits with want.
func mustCode(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := regctl(t, args...)
	if r.code != want {
		t.Fatalf("regctl %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newSettings makes a temp dir holding regctl.toml with content and
// returns the dir and the settings path.
func newSettings(t *testing.T, content string) (dir, settings string) {
	t.Helper()
	dir = t.TempDir()
	settings = filepath.Join(dir, "regctl.toml")
	writeFile(t, settings, content, 0o644)
	return dir, settings
}

// Key generation (RSA 4096) is slow, so one real reconfigure run makes a
// secrets file that other tests copy. Copying the rendered files instead
// would not do: config.yml and gitlab.yml name absolute paths.
var shared struct {
	once    sync.Once
	secrets []byte
	err     string
}

func sharedSecrets(t *testing.T) []byte {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "regctl-cmd-test-")
		if err != nil {
			shared.err = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		settings := filepath.Join(dir, "regctl.toml")
		if err := os.WriteFile(settings, []byte("data_dir = \"data\"\n"), 0o644); err != nil {
			shared.err = err.Error()
			return
		}
		var out, errb bytes.Buffer
		if code := run([]string{"reconfigure", "--settings", settings}, &out, &errb); code != 0 {
			shared.err = "reconfigure for the shared secrets: exit " + strconv.Itoa(code) + ": " + errb.String()
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "regctl-secrets.json"))
		if err != nil {
			shared.err = err.Error()
			return
		}
		shared.secrets = b
	})
	if shared.err != "" {
		t.Fatal(shared.err)
	}
	return shared.secrets
}

// withSecrets is newSettings plus the shared regctl-secrets.json, so that
// reconfigure in dir renders without generating keys.
func withSecrets(t *testing.T, content string) (dir, settings string) {
	t.Helper()
	dir, settings = newSettings(t, content)
	writeFile(t, filepath.Join(dir, "regctl-secrets.json"), string(sharedSecrets(t)), 0o600)
	return dir, settings
}

// prepared is withSecrets after a successful reconfigure.
func prepared(t *testing.T, content string) (dir, settings string) {
	t.Helper()
	dir, settings = withSecrets(t, content)
	mustCode(t, 0, "reconfigure", "--settings", settings)
	return dir, settings
}

// entry is what a snapshot records of one file or folder.
type entry struct {
	dir     bool
	mode    fs.FileMode
	mtime   time.Time
	content string
}

// snapshot records every file and folder under root (relative paths).
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	snap := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{dir: d.IsDir(), mode: info.Mode(), mtime: info.ModTime()}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = string(b)
		}
		snap[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// ageFiles sets every file's mtime far in the past, so that any rewrite,
// even with the same content within the same clock tick, shows.
func ageFiles(t *testing.T, root string) {
	t.Helper()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameTree reports every difference between two snapshots; folders'
// mtimes are compared too, so a created-and-removed temp file shows.
func sameTree(t *testing.T, before, after map[string]entry) {
	t.Helper()
	var names []string
	for k := range before {
		names = append(names, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, inB := before[n]
		a, inA := after[n]
		switch {
		case !inA:
			t.Errorf("%s was removed", n)
		case !inB:
			t.Errorf("%s was created", n)
		case b.content != a.content:
			t.Errorf("%s: content changed", n)
		case b.mode != a.mode:
			t.Errorf("%s: mode changed from %v to %v", n, b.mode, a.mode)
		case !b.mtime.Equal(a.mtime):
			t.Errorf("%s: modified (mtime %v -> %v)", n, b.mtime, a.mtime)
		}
	}
}

func listing(snap map[string]entry) []string {
	var names []string
	for k := range snap {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// mustContain fails for every want missing from s.
func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

func mustNotContain(t *testing.T, what, s string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(s, w) {
			t.Errorf("%s contains %q:\n%s", what, w, s)
		}
	}
}

// lineWith returns the first output line starting with prefix.
func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
