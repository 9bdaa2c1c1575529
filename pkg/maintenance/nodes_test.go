package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"regctl/pkg/storage"
)

func TestNodes(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx := t.Context()
		const iv = time.Second
		if nodes, err := Nodes(ctx, d, iv); err != nil || len(nodes) != 0 {
			t.Fatalf("Nodes on an empty storage = %v, %v", nodes, err)
		}
		live := LocalNode("node-b", "10.0.0.2:5000", "v1.2.3")
		live.ReadOnly, live.ReadOnlyReason = true, "config"
		if err := Heartbeat(ctx, d, live); err != nil {
			t.Fatal(err)
		}
		gone := Node{ID: "node-a", Addr: "10.0.0.1:5000", LastSeen: time.Now().Add(-4 * iv)}
		if err := Heartbeat(ctx, d, gone); err != nil {
			t.Fatal(err)
		}
		// Last seen 4 s ago, but its own interval is 2 s: not gone yet.
		slow := Node{ID: "node-c", LastSeen: time.Now().Add(-4 * iv), IntervalMS: 2000}
		if err := Heartbeat(ctx, d, slow); err != nil {
			t.Fatal(err)
		}
		if err := d.PutContent(ctx, NodePath("node-d"), []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		// Files that are no heartbeat are not listed.
		if err := d.PutContent(ctx, NodesDir+"/README", []byte("x")); err != nil {
			t.Fatal(err)
		}

		nodes, err := Nodes(ctx, d, iv)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range nodes {
			ids = append(ids, n.ID)
		}
		if strings.Join(ids, ",") != "node-a,node-b,node-c,node-d" {
			t.Fatalf("nodes %q", ids)
		}
		a, b, c, dd := nodes[0], nodes[1], nodes[2], nodes[3]
		if !a.Gone || b.Gone || c.Gone || !dd.Gone {
			t.Errorf("gone: a %v b %v c %v d %v; want true false false true", a.Gone, b.Gone, c.Gone, dd.Gone)
		}
		if b.Addr != "10.0.0.2:5000" || b.Version != "v1.2.3" || b.PID == 0 || b.Host == "" ||
			!b.ReadOnly || b.ReadOnlyReason != "config" || time.Since(b.LastSeen) > time.Minute {
			t.Errorf("node-b = %+v", b.Node)
		}
		if dd.Problem == "" {
			t.Errorf("node-d: no problem reported for an unreadable heartbeat")
		}

		if err := RemoveNode(ctx, d, "node-b"); err != nil {
			t.Fatal(err)
		}
		if err := RemoveNode(ctx, d, "node-b"); err != nil {
			t.Errorf("removing a removed node: %v", err)
		}
		nodes, _ = Nodes(ctx, d, iv)
		for _, n := range nodes {
			if n.ID == "node-b" {
				t.Errorf("node-b listed after RemoveNode")
			}
		}

		for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
			if err := Heartbeat(ctx, d, Node{ID: bad}); err == nil {
				t.Errorf("Heartbeat with id %q succeeded", bad)
			}
		}
		if id := NewNodeID(); !validID.MatchString(id) || id == NewNodeID() {
			t.Errorf("NewNodeID = %q", id)
		}
	})
}

func TestWaitForReadOnly(t *testing.T) {
	onDrivers(t, func(t *testing.T, d storage.Driver) {
		ctx, clk := fakeClock(t)
		const iv = DefaultHeartbeat
		const poll = iv / 4
		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(context.Background())
		// wait runs WaitForReadOnly in the background; its timers are
		// the lease's renewal and the next poll.
		wait := func(log *slog.Logger) (done chan struct{}, res *WaitResult, err *error) {
			done, res, err = make(chan struct{}), new(WaitResult), new(error)
			go func() {
				defer close(done)
				*res, *err = WaitForReadOnly(ctx, d, l, iv, log)
			}()
			waitTimers(t, clk, 2)
			return done, res, err
		}
		returned := func(done chan struct{}) bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}

		t.Run("no node", func(t *testing.T) {
			res, err := WaitForReadOnly(ctx, d, l, iv, nil)
			if err != nil || !res.NoDaemons() || res.Waited != 0 {
				t.Fatalf("WaitForReadOnly with no node = %+v, %v", res, err)
			}
		})

		// Node "late" acks after a poll; "crashed" stopped long ago and
		// is not waited for; "old-ack" acked an earlier lease, which
		// does not count until it acks this one.
		late := Node{ID: "late", Addr: "10.0.0.1:5000"}
		stale := l.Info()
		stale.Started = stale.Started.Add(-time.Second)
		for _, n := range []Node{late, {ID: "crashed", LastSeen: clk.Now().Add(-time.Hour)}, {ID: "old-ack", MaintenanceAck: stale.Ack()}} {
			if err := Heartbeat(ctx, d, n); err != nil {
				t.Fatal(err)
			}
		}
		log, logs := newLog()
		done, res, werr := wait(log) // it polled once, and waits for the next
		if returned(done) {
			t.Fatalf("returned before the nodes acknowledged: %+v, %v", *res, *werr)
		}
		late.ReadOnly, late.MaintenanceAck = true, l.Info().Ack()
		for _, n := range []Node{late, {ID: "old-ack", MaintenanceAck: l.Info().Ack()}} {
			if err := Heartbeat(ctx, d, n); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(poll)
		<-done
		if *werr != nil {
			t.Fatal(*werr)
		}
		if res.Live != 2 || res.Acked != 2 || res.Gone != 1 || len(res.Pending) != 0 || res.NoDaemons() || res.Waited != poll {
			t.Errorf("result %+v", *res)
		}
		out := logs.String()
		if !strings.Contains(out, "waiting for regctl daemons") || !strings.Contains(out, "late (10.0.0.1:5000)") || strings.Contains(out, "crashed") {
			t.Errorf("log does not name who it waits for (and only them):\n%s", out)
		}

		t.Run("timeout names the pending node", func(t *testing.T) {
			if err := Heartbeat(ctx, d, Node{ID: "late"}); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			res, err := WaitForReadOnly(wctx, d, l, iv, nil)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "late") ||
				len(res.Pending) != 1 || res.Pending[0] != "late" {
				t.Fatalf("WaitForReadOnly = %+v, %v; want a timeout naming late", res, err)
			}
		})

		t.Run("a node that stops is no longer waited for", func(t *testing.T) {
			// Seen 2.5 intervals ago, never acking: gone half an
			// interval into the wait, not before.
			for _, id := range []string{"late", "old-ack"} {
				if err := Heartbeat(ctx, d, Node{ID: id, LastSeen: clk.Now().Add(-5 * iv / 2)}); err != nil {
					t.Fatal(err)
				}
			}
			done, res, werr := wait(slog.New(slog.DiscardHandler))
			for range 2 { // a quarter, then half an interval
				if returned(done) {
					t.Fatalf("stopped waiting for nodes not gone yet: %+v, %v", *res, *werr)
				}
				clk.Advance(poll)
				waitTimers(t, clk, 2)
			}
			clk.Advance(poll + time.Millisecond)
			<-done
			if *werr != nil || !res.NoDaemons() || res.Gone != 3 {
				t.Fatalf("WaitForReadOnly = %+v, %v; want every node gone", *res, *werr)
			}
		})

		t.Run("lost lease ends the wait", func(t *testing.T) {
			if err := Heartbeat(ctx, d, Node{ID: "late", IntervalMS: time.Hour.Milliseconds()}); err != nil {
				t.Fatal(err)
			}
			l2 := startLostLease(l.Info())
			res, err := WaitForReadOnly(ctx, d, l2, iv, nil)
			if !errors.Is(err, ErrLost) || len(res.Pending) == 0 {
				t.Fatalf("WaitForReadOnly on a lost lease = %+v, %v", res, err)
			}
		})
	})
}

// startLostLease is a Lease that has already been lost.
func startLostLease(info LeaseInfo) *Lease {
	l := &Lease{info: info, lost: make(chan struct{}), stop: make(chan struct{}), renewing: make(chan struct{})}
	close(l.renewing)
	l.markLost(errors.New("taken over in a test"))
	return l
}
