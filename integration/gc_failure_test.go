package integration

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// gcDaemon is a regctl serve on a filesystem root, heartbeating at
// gcHeartbeat, for collections run against it.
type gcDaemon struct {
	addr, config, root string
	drv                storage.Driver
	proc               *testtools.Process
}

func startGCDaemon(t *testing.T) *gcDaemon {
	t.Helper()
	d := &gcDaemon{addr: testtools.FreeAddr(t)}
	d.config = serveConfig(t, d.addr, "")
	d.root = filepath.Join(filepath.Dir(d.config), "root")
	drv, err := storage.NewFilesystem(d.root)
	if err != nil {
		t.Fatal(err)
	}
	d.drv = drv
	cmd := exec.Command(regctlBinary(t), "serve", d.config)
	cmd.Env = cleanEnv(gcHeartbeat)
	d.proc = testtools.StartCmd(t, d.addr, cmd)
	t.Cleanup(closeClientConns)
	return d
}

// push writes img to repo:tag and fails the test on an error.
func (d *gcDaemon) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	if err := remote.Write(mustRef(t, d.addr+"/"+ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// writable checks that the lease is gone and the daemon takes pushes.
func (d *gcDaemon) writable(t *testing.T, ref string) {
	t.Helper()
	if _, err := d.drv.Stat(t.Context(), maintenance.LeasePath); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the maintenance lease is still there after the run (stat: %v)", err)
	}
	if err := remote.Write(mustRef(t, d.addr+"/"+ref), randomImage(t, 512, 1)); err != nil {
		t.Errorf("push after the failed run: %v\ndaemon log:\n%s", err, d.proc.Output())
	}
}

// TestGarbageCollectSweepFailureRestoresWrites: the blob sweep of a
// registry-garbage-collect -m fails on a blob folder that cannot be
// deleted. The command exits 1 naming the phase and the path, the
// running daemon takes pushes again and the lease is gone; the tagged
// image still pulls; once the folder can be deleted, a second run
// finishes the job.
func TestGarbageCollectSweepFailureRestoresWrites(t *testing.T) {
	d := startGCDaemon(t)
	old := randomImage(t, 2048, 2)
	d.push(t, "team/app:v1", old)
	d.push(t, "team/app:v1", randomImage(t, 2048, 2)) // old is untagged now
	oldDigest, _ := old.Digest()
	layers, _ := old.Layers()
	ld, _ := layers[0].Digest()
	blob := digest.Digest(ld.String())

	undo := makeUndeletable(t, filepath.Join(d.root, filepath.FromSlash(storage.BlobDataPath(blob))))
	stdout, stderr, code := runRegctlSplit(t, cleanEnv(gcHeartbeat), "registry-garbage-collect", "-m", d.config)
	t.Logf("the failed run's stderr:\n%s", stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"error:", "delete-blobs", blob.Encoded(), "run registry-garbage-collect again"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "read-only") {
		t.Errorf("stdout does not say the daemon went read-only:\n%s", stdout)
	}
	d.writable(t, "team/app:after-failure")

	// The manifests were deleted before the blobs; the tagged image is
	// whole.
	if code := (&gcScenario{t: t, addr: d.addr}).head("team/app", "manifests", oldDigest); code != http.StatusNotFound {
		t.Errorf("the untagged manifest answers %d after the failed run, want 404 (manifests go first)", code)
	}
	pullComplete(t, d.addr+"/team/app:v1")

	undo()
	if stdout, stderr, code := runRegctlSplit(t, cleanEnv(gcHeartbeat), "registry-garbage-collect", "-m", d.config); code != 0 {
		t.Fatalf("second run: exit %d\n%s%s", code, stdout, stderr)
	}
	if code := (&gcScenario{t: t, addr: d.addr}).head("team/app", "blobs", ld); code != http.StatusNotFound {
		t.Errorf("the second run left blob %s (HEAD %d)", blob, code)
	}
	d.writable(t, "team/app:after-second-run")
}

// makeUndeletable makes the file at p impossible to delete, also for
// root (chattr +i) and returns the undo.
func makeUndeletable(t *testing.T, p string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		// Without write permission on its folder, a file stays.
		dir := filepath.Dir(p)
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		undo := func() { os.Chmod(dir, 0o755) }
		t.Cleanup(undo)
		return undo
	}
	chattr := testtools.Tool(t, "chattr")
	if out, err := exec.Command(chattr, "+i", p).CombinedOutput(); err != nil {
		testtools.SkipOrFail(t, "chattr +i %s is not possible here: %v\n%s", p, err, out)
	}
	undo := func() { exec.Command(chattr, "-i", p).Run() }
	t.Cleanup(undo)
	return undo
}

// TestGarbageCollectInterruptRestoresWrites is Ctrl-C during a run: the
// command gets SIGINT while the daemon is read-only for it, exits 1
// saying it was interrupted, and the daemon takes pushes again. A tiny
// run may finish before the signal lands; it is then tried again.
func TestGarbageCollectInterruptRestoresWrites(t *testing.T) {
	d := startGCDaemon(t)
	for attempt := range 5 {
		for range 3 {
			d.push(t, "team/app:v1", randomImage(t, 1024, 2)) // each overwrite leaves garbage
		}
		cmd := exec.Command(regctlBinary(t), "registry-garbage-collect", "-m", d.config)
		cmd.Env = cleanEnv(gcHeartbeat)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Interrupt once the daemon refuses writes: the run is on.
		var err error
		interrupted := false
	poll:
		for {
			select {
			case err = <-done:
				break poll
			case <-time.After(10 * time.Millisecond):
			}
			if resp, _ := do(t, http.MethodPost, d.addr, "/v2/team/app/blobs/uploads/", nil, nil); resp.StatusCode == http.StatusMethodNotAllowed && !interrupted {
				cmd.Process.Signal(os.Interrupt)
				interrupted = true
			}
		}
		if !interrupted || err == nil {
			t.Logf("attempt %d: the run ended before the interrupt landed (%v); again", attempt, err)
			continue
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("interrupted run: %v, want exit 1\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), "error: interrupted") {
			t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
		}
		d.writable(t, "team/app:after-interrupt")
		pullComplete(t, d.addr+"/team/app:v1")
		return
	}
	t.Fatal("no run was interrupted in 5 attempts")
}

// pullComplete pulls the image at ref: manifest, config and layers.
func pullComplete(t *testing.T, ref string) {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref))
	if err == nil {
		_, err = img.RawConfigFile()
	}
	if err == nil {
		err = pullAllLayers(img)
	}
	if err != nil {
		t.Errorf("pull %s: %v", ref, err)
	}
}

// TestGarbageCollectProgressOnTerminal: with stderr on a terminal, the
// command draws a progress line per phase, each ending complete; the
// summary on stdout (a pipe) keeps the plain layout.
func TestGarbageCollectProgressOnTerminal(t *testing.T) {
	d := startGCDaemon(t)
	d.push(t, "team/app:v1", randomImage(t, 1024, 2))
	d.push(t, "team/app:v1", randomImage(t, 1024, 2))
	pty, tty := testtools.OpenPTY(t)
	drawn := make(chan string)
	go func() {
		b, _ := io.ReadAll(pty)
		drawn <- string(b)
	}()
	cmd := exec.Command(regctlBinary(t), "registry-garbage-collect", "-m", d.config)
	cmd.Env = cleanEnv(gcHeartbeat, "TERM=xterm")
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, tty
	err := cmd.Run()
	tty.Close()
	got := <-drawn
	if err != nil {
		t.Fatalf("registry-garbage-collect -m: %v\nstdout:\n%s\nterminal:\n%q", err, stdout.String(), got)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
	var phases []string
	for _, l := range lines {
		draws := strings.Split(l, "\r\x1b[K")
		if len(draws) < 2 {
			continue // not a progress line
		}
		last := draws[len(draws)-1]
		phase, _, _ := strings.Cut(last, " ")
		phases = append(phases, phase)
		if !strings.Contains(last, "100%") {
			t.Errorf("phase %s ends incomplete: %q", phase, last)
		}
	}
	want := []string{"scan", "read", "mark", "delete-manifests", "delete-layer-links", "delete-blobs"}
	if !slices.Equal(phases, want) {
		t.Errorf("progress lines for phases %v, want %v\nterminal:\n%q", phases, want, got)
	}
	if !strings.Contains(stdout.String(), "\nrepositories:") {
		t.Errorf("the summary on a pipe is not in the plain layout:\n%s", stdout.String())
	}
}
