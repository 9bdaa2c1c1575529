package reconfigure

import (
	"bytes"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/certs"
	"regctl/pkg/distconfig"
	"regctl/pkg/settings"
)

// testSecrets is one 2048-bit pair shared by the tests that need a real
// one, so that they do not each spend a second on a 4096-bit key.
var testSecrets = sync.OnceValue(func() RegistrySecrets {
	key, cert, err := certs.GenerateKeyPairBits(2048, time.Now())
	if err != nil {
		panic(err)
	}
	return RegistrySecrets{HTTPSecret: fixedSecrets.HTTPSecret, InternalKey: string(key), InternalCertificate: string(cert)}
})

// setup writes settings into a fresh folder with a prepared secrets file
// and returns the loaded settings.
func setup(t *testing.T, src string) *settings.Loaded {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "regctl.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sec := &Secrets{Registry: testSecrets()}
	b, err := sec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "regctl-secrets.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// snapshot records every file under dir with content, mode and mtime.
// backdate sets the mtime of everything under dir to when.
func backdate(t *testing.T, dir string, when time.Time) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content := ""
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = string(b)
		}
		out[p] = info.Mode().String() + " " + info.ModTime().String() + " " + content
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunWritesEveryFileWithModes(t *testing.T) {
	withGitlabGroup(t, "regctl-test-no-such-group") // TestGitlabYMLModeAndGroup has the group
	l := setup(t, "data_dir = \"data\"\n")
	res, err := Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Dir()
	want := map[string]fs.FileMode{
		"regctl-secrets.json":                       0o600,
		"data/registry/config.yml":                  0o600,
		"data/registry/gitlab-registry.crt":         0o644,
		"data/gitlab-rails/etc/gitlab.yml":          0o600,
		"data/gitlab-rails/etc/gitlab-registry.key": 0o600,
	}
	for rel, mode := range want {
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", rel, st.Mode().Perm(), mode)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "data/gitlab-rails/shared/registry"))
	if err != nil || st.Mode().Perm() != 0o770 || !st.IsDir() {
		t.Errorf("storage root: %v %v, want a 0770 folder", st, err)
	}
	// The prepared secrets file is reused, not rewritten.
	for _, f := range res.Files {
		wantChange := Created
		if f.Role == "secrets" {
			wantChange = Unchanged
		}
		if f.Change != wantChange {
			t.Errorf("%s: %s, want %s", f.Path, f.Change, wantChange)
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, "data/gitlab-rails/etc/gitlab-registry.key"))
	if string(key) != testSecrets().InternalKey {
		t.Error("key file does not hold the key from the secrets file")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "data", "*", ".*tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestRunIsIdempotent(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n")
	if _, err := Run(l, Options{}); err != nil {
		t.Fatal(err)
	}
	// Back-date everything: a file written again (or a directory a
	// file is created in) gets a new mtime whatever the clock's
	// resolution.
	backdate(t, l.Dir(), time.Now().Add(-time.Hour))
	before := snapshot(t, l.Dir())
	res, err := Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("second run changed something: %+v", res)
	}
	for _, f := range res.Files {
		if f.Change != Unchanged {
			t.Errorf("%s: %s, want unchanged", f.Path, f.Change)
		}
	}
	after := snapshot(t, l.Dir())
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s was touched", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("files before %d, after %d", len(before), len(after))
	}
}

func TestRunFixesModeAndContent(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n")
	if _, err := Run(l, Options{}); err != nil {
		t.Fatal(err)
	}
	p := l.Resolve()
	if err := os.Chmod(p.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.GitlabYML, []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]FileResult{}
	for _, f := range res.Files {
		got[f.Path] = f
	}
	if f := got[p.Key]; f.Change != Updated || !strings.Contains(f.Note, "0644 -> 0600") {
		t.Errorf("key: %+v, want updated with a mode note", f)
	}
	if got[p.GitlabYML].Change != Updated {
		t.Errorf("gitlab.yml: %s, want updated", got[p.GitlabYML].Change)
	}
	if st, _ := os.Stat(p.Key); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o after run", st.Mode().Perm())
	}
}

func TestRunGeneratesSecretsOnceAndKeepsThem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "regctl.toml")
	os.WriteFile(path, []byte("data_dir = \"data\"\n"), 0o644)
	l, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Generated, ",") != "registry.http_secret,registry.internal_key,registry.internal_certificate" {
		t.Errorf("generated %v", res.Generated)
	}
	sec1, err := LoadSecrets(filepath.Join(dir, "regctl-secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sec1.Registry.HTTPSecret) != 128 {
		t.Errorf("http_secret has %d chars, want 128", len(sec1.Registry.HTTPSecret))
	}
	key, err := certs.ParsePrivateKeyPEM([]byte(sec1.Registry.InternalKey))
	if err != nil {
		t.Fatal(err)
	}
	if kt := certs.KeyType(key.Public()); kt != "RSA 4096" {
		t.Errorf("key type %s, want RSA 4096", kt)
	}
	if !strings.Contains(sec1.Registry.InternalKey, "BEGIN RSA PRIVATE KEY") {
		t.Error("key is not PKCS#1 PEM")
	}

	// Losing the rendered files loses nothing: they come back from the secrets.
	p := l.Resolve()
	os.Remove(p.Key)
	os.Remove(p.Certificate)
	// A changed setting re-renders config.yml with the same secret.
	os.WriteFile(path, []byte("data_dir = \"data\"\n[registry]\nlog_level = \"debug\"\n"), 0o644)
	l, err = settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err = Run(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Generated) != 0 {
		t.Errorf("second run generated %v", res.Generated)
	}
	key2, _ := os.ReadFile(p.Key)
	if string(key2) != sec1.Registry.InternalKey {
		t.Error("key file not restored from the secrets")
	}
	cfg, _ := os.ReadFile(p.ConfigYML)
	if !strings.Contains(string(cfg), sec1.Registry.HTTPSecret) {
		t.Error("config.yml lost the http secret")
	}
}

func TestSecretsKeepUnknownSectionsAndRefuseBrokenFile(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n")
	path := l.Resolve().Secrets
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte("{\n"), []byte("{\n  \"future\": {\"x\": 1},\n"), 1)
	os.WriteFile(path, b, 0o600)
	sec, err := LoadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sec.Marshal()
	if !bytes.Contains(out, []byte(`"future"`)) {
		t.Errorf("unknown section dropped:\n%s", out)
	}

	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := Run(l, Options{}); err == nil || !strings.Contains(err.Error(), "will not overwrite") {
		t.Errorf("broken secrets: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Error("broken secrets file was overwritten")
	}
}

func TestSettingsSecretsWin(t *testing.T) {
	other, err := func() (RegistrySecrets, error) {
		k, c, err := certs.GenerateKeyPairBits(2048, time.Now())
		return RegistrySecrets{InternalKey: string(k), InternalCertificate: string(c)}, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	settings := "data_dir = \"data\"\n[registry]\nhttp_secret = \"from-settings\"\n" +
		"internal_key = '''\n" + other.InternalKey + "'''\n" +
		"internal_certificate = '''\n" + other.InternalCertificate + "'''\n"
	l := setup(t, settings)
	if _, err := Run(l, Options{}); err != nil {
		t.Fatal(err)
	}
	p := l.Resolve()
	key, _ := os.ReadFile(p.Key)
	if string(key) != other.InternalKey {
		t.Error("internal_key from the settings did not win")
	}
	cfg, _ := os.ReadFile(p.ConfigYML)
	if !strings.Contains(string(cfg), `secret: "from-settings"`) {
		t.Error("http_secret from the settings did not win")
	}
}

func TestDryRunWritesNothingAndHidesSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "regctl.toml")
	os.WriteFile(path, []byte("data_dir = \"data\"\n"), 0o644)
	l, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	res, err := Run(l, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	if len(before) != len(after) {
		t.Errorf("dry run wrote files: %d before, %d after", len(before), len(after))
	}
	var all strings.Builder
	for _, f := range res.Files {
		if f.Change != Created {
			t.Errorf("%s: %s, want created", f.Path, f.Change)
		}
		all.WriteString(f.Diff)
	}
	diff := all.String()
	if !strings.Contains(diff, "+++ b"+l.Resolve().ConfigYML) || !strings.Contains(diff, "+version: 0.1") {
		t.Errorf("no unified diff for config.yml:\n%s", diff)
	}
	if strings.Contains(diff, "PRIVATE KEY") || !strings.Contains(diff, `secret: "<redacted>"`) {
		t.Errorf("secrets leak into the diff:\n%s", diff)
	}
	if len(res.DirsCreated) == 0 {
		t.Error("dry run does not list the folders it would create")
	}
}

// TestDistributionAcceptsRenderedConfig starts CNCF Distribution v3.1.2
// on what reconfigure renders for each filesystem scenario: it must start
// and answer /v2/ with a token challenge naming our realm.
func TestDistributionAcceptsRenderedConfig(t *testing.T) {
	testtools.Tool(t, testtools.DistributionTool)
	for _, dir := range scenarios(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, "regctl.toml"))
			if err != nil {
				t.Fatal(err)
			}
			l := setup(t, string(src))
			if !l.Settings.Registry.Enable {
				t.Skip("a GitLab-only node renders no config.yml")
			}
			// Keep every path inside the test folder and use a free port.
			work := l.Dir()
			addr := testtools.FreeAddr(t)
			s := &l.Settings
			s.DataDir = filepath.Join(work, "data")
			s.Registry.RegistryHTTPAddr = addr
			s.Registry.RootCertBundle = ""
			s.Registry.DebugAddr = strings.Replace(s.Registry.DebugAddr, "localhost:5001", testtools.FreeAddr(t), 1)
			s.GitlabRails.RegistryKeyPath = ""
			if fsDriver, ok := s.Registry.Storage["filesystem"].(map[string]any); ok {
				fsDriver["rootdirectory"] = filepath.Join(work, "storage")
			}
			if _, err := Run(l, Options{}); err != nil {
				t.Fatal(err)
			}
			// regctl serve reads the same file, regctl's own keys too.
			rendered, err := os.ReadFile(l.Resolve().ConfigYML)
			if err != nil {
				t.Fatal(err)
			}
			dc, err := distconfig.Parse(l.Resolve().ConfigYML, rendered, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("regctl does not read the rendered config.yml: %v", err)
			}
			if q := dc.Notifications.Queue; q.Directory != l.Resolve().NotifyQueue || q.MaxEvents != s.Registry.NotificationsQueueMaxEvents {
				t.Errorf("notifications.queue = %+v, want directory %q, maxevents %d", q, l.Resolve().NotifyQueue, s.Registry.NotificationsQueueMaxEvents)
			}
			testtools.StartDistribution(t, l.Resolve().ConfigYML, addr)
			resp, err := http.Get("http://" + addr + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("/v2/ answered %d, want 401", resp.StatusCode)
			}
			want := `Bearer realm="` + s.TokenRealm() + `",service="container_registry"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
}

// A run killed mid-write leaves a temporary file; the next run removes it,
// and a second concurrent run is refused rather than interleaved.
func TestRunCleansUpAfterCrashAndRefusesConcurrentRun(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n")
	if _, err := Run(l, Options{}); err != nil {
		t.Fatal(err)
	}
	p := l.Resolve()
	stale := filepath.Join(filepath.Dir(p.ConfigYML), ".config.yml.tmp-12345")
	if err := os.WriteFile(stale, []byte("half a fi"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(l, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}

	unlock, err := settings.Lock(l)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Run(l, Options{}); err == nil || !strings.Contains(err.Error(), "another regctl command") {
		t.Errorf("concurrent run: err = %v", err)
	}
}
