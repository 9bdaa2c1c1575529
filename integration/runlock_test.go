package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// TestClusterRunLockS3: on a bucket, the run lock is an object in the
// bucket, so a cleanup or GC from any host is refused while another run
// holds it, naming the holder; a holder killed -9 is taken over once its
// lock expires; Ctrl-C releases it.
func TestClusterRunLockS3(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, "a", clusterHeartbeat, nil)
	settings := filepath.Join(c.dir, "regctl.toml")
	if err := os.WriteFile(settings, []byte("data_dir = \"data\"\n[[registry.cleanup_policies]]\nname = \"all\"\nrepositories = [\"**\"]\nenabled = true\nname_regex = \"v.*\"\nkeep_n = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A second host: another config on the same bucket.
	other := c.config(t, newS3Node(t, c.gw, c.bucket), "other")

	lockInfo := func() (*maintenance.LeaseInfo, error) {
		b, err := c.drv.GetContent(t.Context(), maintenance.RunLockObject)
		if err != nil {
			return nil, err
		}
		var info maintenance.LeaseInfo
		return &info, json.Unmarshal(b, &info)
	}
	// holdGC starts a GC that holds the run lock for a while: it waits
	// for the ack of a frozen node that heartbeats every 5 s. stopNode
	// kills the node and removes its heartbeat, so later runs do not
	// wait for it.
	holdGC := func(name string, extra ...string) (gc *runningCmd, stopNode func()) {
		n := c.start(t, name, 5*time.Second, nil)
		if err := syscall.Kill(n.proc.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopNode = func() {
			syscall.Kill(n.proc.Pid(), syscall.SIGKILL)
			<-n.proc.Done()
			nodes, err := maintenance.Nodes(t.Context(), c.drv, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range nodes {
				if s.Addr == n.Addr {
					maintenance.RemoveNode(t.Context(), c.drv, s.ID)
				}
			}
		}
		gc = startCmd(t, c.gcCmd(t, a, append([]string{"--ack-timeout", "60s"}, extra...)...))
		waitFor(t, 10*time.Second, "GC holds the run lock and the lease", func() bool {
			_, err := lockInfo()
			refused, _, _ := probeWrite(t, a.Addr)
			return err == nil && refused
		})
		return gc, stopNode
	}
	refusedBy := func(t *testing.T, holderPID int, args ...string) {
		t.Helper()
		out, code := runRegctl(t, c.dir, c.env(clusterHeartbeat), args...)
		if code != 1 {
			t.Fatalf("regctl %v: exit %d while another run holds the lock, want 1\n%s", args, code, out)
		}
		for _, want := range []string{
			"another registry-cleanup or registry-garbage-collect is running on this storage",
			"s3:" + maintenance.RunLockObject, "registry-garbage-collect, host ", fmt.Sprintf("pid %d,", holderPID),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("regctl %v: the refusal does not say %q:\n%s", args, want, out)
			}
		}
	}

	const ttl = 3 * time.Second
	gc1, stopNode := holdGC("frozen1", "--lease-ttl", ttl.String())
	info, err := lockInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Holder != "registry-garbage-collect" || info.PID != gc1.cmd.Process.Pid || info.Host == "" || !info.Expires.After(info.Started) {
		t.Errorf("run lock %+v: want GC's holder, host, pid, started, expires", info)
	}
	// A second GC and a cleanup, from the other host's config.
	refusedBy(t, gc1.cmd.Process.Pid, "-o", "json", "registry-garbage-collect", "-m", other)
	refusedBy(t, gc1.cmd.Process.Pid, "--settings", settings, "registry-cleanup", other)

	// kill -9: nothing releases the lock; it is refused until it expires.
	gc1.cmd.Process.Signal(syscall.SIGKILL)
	gc1.wait()
	killed := time.Now()
	stopNode()
	last, err := lockInfo()
	if err != nil {
		t.Fatalf("run lock after kill -9: %v, want it left behind", err)
	}
	refusedBy(t, gc1.cmd.Process.Pid, "registry-garbage-collect", "-m", other)
	var out string
	for {
		var code int
		out, code = runRegctl(t, c.dir, c.env(clusterHeartbeat), "-o", "json", "registry-garbage-collect", "-m", other)
		if code == 0 {
			break
		}
		if !strings.Contains(out, "another registry-cleanup or registry-garbage-collect") || time.Since(killed) > ttl+15*time.Second {
			t.Fatalf("GC after the holder was killed: exit %d\n%s", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("the run lock of a GC killed -9 was taken over %s after the kill (ttl %s)", took.Round(time.Millisecond), ttl)
	if time.Now().Before(last.Expires) {
		t.Errorf("taken over before the dead holder's lock expired (%s)", last.Expires)
	}
	if _, err := lockInfo(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("run lock after a GC ended: %v, want none", err)
	}

	// Ctrl-C releases the lock (and the lease) on the way out.
	gc2, stopNode2 := holdGC("frozen2")
	gc2.cmd.Process.Signal(syscall.SIGINT)
	if err := gc2.wait(); err == nil {
		t.Errorf("interrupted GC exited 0:\n%s", gc2.out.String())
	}
	if _, err := lockInfo(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("run lock after Ctrl-C: %v, want none\n%s", err, gc2.out.String())
	}
	if l, err := maintenance.Current(t.Context(), c.drv); l != nil || err != nil {
		t.Errorf("maintenance lease after Ctrl-C: %v, %v", l, err)
	}
	stopNode2()
	waitWritable(t, 5*time.Second, a)
}

// runningCmd is a regctl run in the background, its output collected.
type runningCmd struct {
	cmd  *exec.Cmd
	out  *strings.Builder
	done chan error
}

func startCmd(t *testing.T, cmd *exec.Cmd) *runningCmd {
	t.Helper()
	r := &runningCmd{cmd: cmd, out: &strings.Builder{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-r.done; r.done <- nil })
	return r
}

// wait waits for the run to end and returns its error.
func (r *runningCmd) wait() error {
	err := <-r.done
	r.done <- err
	return err
}
