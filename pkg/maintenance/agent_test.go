package maintenance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"regctl/pkg/storage"
)

// heartbeatOf reads one node's heartbeat.
func heartbeatOf(t *testing.T, d storage.Driver, id string) NodeStatus {
	t.Helper()
	nodes, err := Nodes(t.Context(), d, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no heartbeat of %s", id)
	return NodeStatus{}
}

func TestAgentTick(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		srv := &fakeServer{}
		log, logs := newLog()
		flaky := &failingReads{Driver: d}
		a := &Agent{Driver: flaky, Server: srv, Node: LocalNode("node-1", "127.0.0.1:5000", "test"), Interval: 400 * time.Millisecond, Log: log}

		a.Tick(ctx)
		if on, _ := srv.state(); on {
			t.Fatal("maintenance on with no lease")
		}
		hb := heartbeatOf(t, d, "node-1")
		if hb.ReadOnly || hb.MaintenanceAck != "" || hb.Addr != "127.0.0.1:5000" || hb.IntervalMS != 400 {
			t.Fatalf("heartbeat with no lease: %+v", hb.Node)
		}

		// A lease with a write in flight: read-only at once, the ack
		// only once the write is done.
		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		srv.setInFlight(1)
		a.Tick(ctx)
		if on, reason := srv.state(); !on || reason != "garbage collection by h/1/gc" {
			t.Fatalf("after a lease: maintenance %v %q", on, reason)
		}
		hb = heartbeatOf(t, d, "node-1")
		if !hb.ReadOnly || hb.ReadOnlyReason != "maintenance: garbage collection by h/1/gc" || hb.MaintenanceAck != "" {
			t.Fatalf("heartbeat with a write in flight: %+v", hb.Node)
		}
		srv.setInFlight(0)
		a.Tick(ctx)
		if hb = heartbeatOf(t, d, "node-1"); !hb.Acks(l.Info()) {
			t.Fatalf("heartbeat once idle: %+v, want the ack of %s", hb.Node, l.Info().Ack())
		}
		a.Tick(ctx) // a renewal changes nothing
		if strings.Count(logs.String(), "maintenance: refusing writes") != 1 {
			t.Errorf("the switch was logged %d times:\n%s", strings.Count(logs.String(), "maintenance: refusing writes"), logs)
		}

		// Config read-only shows in the reason alongside maintenance.
		srv.mu.Lock()
		srv.readOnly = true
		srv.mu.Unlock()
		a.Tick(ctx)
		if hb = heartbeatOf(t, d, "node-1"); hb.ReadOnlyReason != "config; maintenance: garbage collection by h/1/gc" {
			t.Errorf("reason with both: %q", hb.ReadOnlyReason)
		}

		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		a.Tick(ctx)
		if on, _ := srv.state(); on {
			t.Fatal("maintenance still on after Release")
		}
		hb = heartbeatOf(t, d, "node-1")
		if !hb.ReadOnly || hb.ReadOnlyReason != "config" || hb.MaintenanceAck != "" {
			t.Fatalf("heartbeat after Release, config read-only: %+v", hb.Node)
		}
		srv.mu.Lock()
		srv.readOnly = false
		srv.mu.Unlock()

		// An expired lease (its holder crashed) releases the node.
		putLease(t, d, crashedLease())
		a.Tick(ctx)
		if on, _ := srv.state(); on {
			t.Fatal("maintenance on for an expired lease")
		}
		if !strings.Contains(logs.String(), "maintenance lease expired") {
			t.Errorf("expired lease not logged:\n%s", logs)
		}
		if err := d.Delete(ctx, LeasePath); err != nil {
			t.Fatal(err)
		}

		// Fail closed: writes stop on the third failed read in a row,
		// and resume once the lease can be read again.
		flaky.setFail(true)
		a.Tick(ctx)
		a.Tick(ctx)
		if on, _ := srv.state(); on {
			t.Fatal("maintenance on after 2 failed reads")
		}
		a.Tick(ctx)
		if on, reason := srv.state(); !on || !strings.Contains(reason, "cannot be read") {
			t.Fatalf("after 3 failed reads: maintenance %v %q", on, reason)
		}
		if hb = heartbeatOf(t, d, "node-1"); !hb.ReadOnly || hb.MaintenanceAck != "" {
			t.Errorf("heartbeat while failing closed: %+v", hb.Node)
		}
		flaky.setFail(false)
		a.Tick(ctx)
		if on, _ := srv.state(); on {
			t.Fatal("maintenance still on once the lease reads again")
		}

		// A corrupt lease fails closed too, until a job replaces it.
		if err := d.PutContent(ctx, LeasePath, []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		a.Tick(ctx)
		if on, _ := srv.state(); !on {
			t.Fatal("maintenance off with a corrupt lease")
		}
		l, err = Acquire(ctx, d, "h/2/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		a.Tick(ctx)
		if hb = heartbeatOf(t, d, "node-1"); !hb.Acks(l.Info()) {
			t.Errorf("no ack of the lease that replaced the corrupt one: %+v", hb.Node)
		}
		l.Release(ctx)
	})
}

// Run switches within a few intervals and removes the heartbeat when
// stopped.
func TestAgentRun(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		srv := &fakeServer{}
		const iv = 300 * time.Millisecond // shorter beats flake on a loaded machine
		a := &Agent{Driver: d, Server: srv, Node: LocalNode(NewNodeID(), "", "test"), Interval: iv}
		a.Tick(ctx)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Run(runCtx)
		}()

		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := WaitForReadOnly(ctx, d, l, iv, nil)
		if err != nil || res.Acked != 1 {
			t.Fatalf("WaitForReadOnly = %+v, %v", res, err)
		}
		if on, _ := srv.state(); !on {
			t.Fatal("acknowledged but not in maintenance")
		}
		t.Logf("acknowledged %v after the lease (interval %v)", time.Since(start), iv)
		l.Release(ctx)
		waitUntil(t, 20*iv, "maintenance to end", func() bool { on, _ := srv.state(); return !on })

		stop()
		<-done
		if _, err := d.Stat(ctx, NodePath(a.Node.ID)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("heartbeat after Run ended: %v", err)
		}
	})
}

func TestHeartbeatFromEnv(t *testing.T) {
	t.Setenv(HeartbeatEnv, "")
	if d, err := HeartbeatFromEnv(); err != nil || d != DefaultHeartbeat {
		t.Errorf("unset: %v, %v", d, err)
	}
	t.Setenv(HeartbeatEnv, "250ms")
	if d, err := HeartbeatFromEnv(); err != nil || d != 250*time.Millisecond {
		t.Errorf("250ms: %v, %v", d, err)
	}
	for _, bad := range []string{"2", "-1s", "0s", "soon"} {
		t.Setenv(HeartbeatEnv, bad)
		if _, err := HeartbeatFromEnv(); err == nil || !strings.Contains(err.Error(), HeartbeatEnv) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
