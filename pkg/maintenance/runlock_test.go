package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

func TestRunLock(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fs := distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": root}}
	if p := RunLockPath(fs); p != filepath.Join(root, ".regctl-run.lock") {
		t.Errorf("filesystem lock at %s", p)
	}
	lk, err := LockRuns(t.Context(), fs, nil, "first", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockRuns(t.Context(), fs, nil, "second", 0); !errors.Is(err, ErrRunInProgress) || !strings.Contains(err.Error(), "first, pid") {
		t.Fatalf("second lock: %v", err)
	}
	if lk.Lost() != nil {
		t.Error("a filesystem lock can be lost")
	}
	lk.Release()
	// A parallel test that starts a process forks this one: the child
	// holds a copy of the lock's descriptor until it execs (close-on-exec),
	// so right after the release the lock may stay taken for a moment.
	deadline := time.Now().Add(2 * time.Second)
	for {
		lk, err = LockRuns(t.Context(), fs, nil, "third", 0)
		if err == nil || !errors.Is(err, ErrRunInProgress) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	lk.Release()
}

// On S3 the run lock is an object in the bucket: a second run is
// refused from any host (here: another driver on the same bucket), and
// the lock of a run that died is taken over once expired.
func TestRunLockS3(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	bucket := g.Bucket(t)
	params := map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": bucket, "pathstyle": true,
	}
	st := distconfig.Storage{Driver: "s3", Params: params}
	open := func() *storage.S3 {
		d, err := storage.NewS3(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	hostA, hostB := open(), open()
	ctx, clk := fakeClock(t)

	const ttl = DefaultRunLockTTL
	a, err := LockRuns(ctx, st, hostA, "registry-garbage-collect", ttl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hostB.GetContent(ctx, RunLockObject)
	if err != nil {
		t.Fatalf("no lock object in the bucket: %v", err)
	}
	var info LeaseInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Holder != "registry-garbage-collect" || info.Host == "" || info.PID != os.Getpid() || info.Started.IsZero() || !info.Expires.After(info.Started) {
		t.Errorf("lock object %s: want holder, host, pid, started, expires", b)
	}
	// Held past several ttls: it is renewed.
	advanceRenewals(t, clk, 1, ttl, 6)
	_, err = LockRuns(ctx, st, hostB, "registry-cleanup", ttl)
	if !errors.Is(err, ErrRunInProgress) {
		t.Fatalf("second run on the bucket: %v, want ErrRunInProgress", err)
	}
	for _, want := range []string{"registry-garbage-collect", "host " + info.Host, "pid ", "s3:" + RunLockObject} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %q", err, want)
		}
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := hostB.GetContent(ctx, RunLockObject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lock object after release: %v", err)
	}

	// A holder that dies stops renewing, and deletes nothing: its lock
	// is refused until the last moment of its ttl, and taken over then.
	dead, err := LockRuns(ctx, st, hostA, "registry-cleanup", ttl)
	if err != nil {
		t.Fatal(err)
	}
	close(dead.lease.stop)
	<-dead.lease.renewing
	clk.Advance(ttl - time.Millisecond)
	if _, err := LockRuns(ctx, st, hostB, "registry-garbage-collect", ttl); !errors.Is(err, ErrRunInProgress) {
		t.Fatalf("while the dead run's lock is live: %v", err)
	}
	clk.Advance(time.Millisecond)
	next, err := LockRuns(ctx, st, hostB, "registry-garbage-collect", ttl)
	if err != nil {
		t.Fatalf("once the dead run's lock expired: %v", err)
	}
	// A lock taken from its holder (deleted here, as a takeover after a
	// missed renewal would) stops the work bound to it.
	ctx2, unbind := next.Bind(ctx)
	defer unbind()
	if err := hostA.Delete(ctx, RunLockObject); err != nil {
		t.Fatal(err)
	}
	waitTimers(t, clk, 1)
	clk.Advance(ttl / 3) // the next renewal finds it gone
	select {
	case <-ctx2.Done():
		if cause := context.Cause(ctx2); !errors.Is(cause, ErrLost) || !strings.Contains(cause.Error(), "run lock") {
			t.Errorf("cause %v", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("work went on after its run lock was lost")
	}
	next.Release()
}

// The flock file is in the storage root: a symbolic link planted there
// is refused, never followed, so the holder's name is never written
// into a file outside the root.
func TestRunLockRefusesSymlink(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, ".regctl-run.lock")); err != nil {
		t.Fatal(err)
	}
	fs := distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": root}}
	lk, err := LockRuns(t.Context(), fs, nil, "gc", 0)
	if err == nil {
		lk.Release()
		t.Error("a symbolic link taken as the run lock")
	} else if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not say why", err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("the file outside the root now holds %q", b)
	}
}
