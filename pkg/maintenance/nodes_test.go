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
		ctx := t.Context()
		const iv = 300 * time.Millisecond // gone after 3 intervals: room for a loaded machine
		l, err := Acquire(ctx, d, "h/1/gc", "garbage collection", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(context.Background())

		t.Run("no node", func(t *testing.T) {
			res, err := WaitForReadOnly(ctx, d, l, iv, nil)
			if err != nil || !res.NoDaemons() || res.Waited > time.Second {
				t.Fatalf("WaitForReadOnly with no node = %+v, %v", res, err)
			}
		})

		// Node "late" acks after a delay; "crashed" stopped long ago and
		// is not waited for; "old-ack" acked an earlier lease, which
		// does not count.
		late := Node{ID: "late", Addr: "10.0.0.1:5000"}
		if err := Heartbeat(ctx, d, late); err != nil {
			t.Fatal(err)
		}
		if err := Heartbeat(ctx, d, Node{ID: "crashed", LastSeen: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		stale := l.Info()
		stale.Started = stale.Started.Add(-time.Second)
		if err := Heartbeat(ctx, d, Node{ID: "old-ack", MaintenanceAck: stale.Ack()}); err != nil {
			t.Fatal(err)
		}
		// Keep "late" and "old-ack" alive while the wait runs.
		beat, stopBeat := context.WithCancel(ctx)
		defer stopBeat()
		ackAt := time.Now().Add(400 * time.Millisecond)
		beats := make(chan struct{})
		go func() {
			defer close(beats)
			for beat.Err() == nil {
				n := late
				if time.Now().After(ackAt) {
					n.ReadOnly, n.MaintenanceAck = true, l.Info().Ack()
				}
				Heartbeat(beat, d, n)
				o := Node{ID: "old-ack", MaintenanceAck: l.Info().Ack()}
				if time.Now().Before(ackAt) {
					o.MaintenanceAck = stale.Ack()
				}
				Heartbeat(beat, d, o)
				time.Sleep(iv / 2)
			}
		}()

		log, logs := newLog()
		res, err := WaitForReadOnly(ctx, d, l, iv, log)
		if err != nil {
			t.Fatal(err)
		}
		if res.Live != 2 || res.Acked != 2 || res.Gone != 1 || len(res.Pending) != 0 || res.NoDaemons() {
			t.Errorf("result %+v", res)
		}
		if res.Waited < 300*time.Millisecond {
			t.Errorf("returned after %v, before the nodes acknowledged", res.Waited)
		}
		out := logs.String()
		if !strings.Contains(out, "waiting for regctl daemons") || !strings.Contains(out, "late (10.0.0.1:5000)") || strings.Contains(out, "crashed") {
			t.Errorf("log does not name who it waits for (and only them):\n%s", out)
		}
		stopBeat()
		<-beats

		t.Run("timeout names the pending node", func(t *testing.T) {
			if err := Heartbeat(ctx, d, Node{ID: "late"}); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
			defer cancel()
			res, err := WaitForReadOnly(wctx, d, l, iv, nil)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "late") ||
				len(res.Pending) != 1 || res.Pending[0] != "late" {
				t.Fatalf("WaitForReadOnly = %+v, %v; want a timeout naming late", res, err)
			}
		})

		t.Run("a node that stops is no longer waited for", func(t *testing.T) {
			// Seen 2.5 intervals ago, never acking: gone half an
			// interval into the wait.
			for _, id := range []string{"late", "old-ack"} {
				if err := Heartbeat(ctx, d, Node{ID: id, LastSeen: time.Now().Add(-5 * iv / 2)}); err != nil {
					t.Fatal(err)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := WaitForReadOnly(wctx, d, l, iv, slog.New(slog.DiscardHandler))
			if err != nil || !res.NoDaemons() || res.Gone != 3 {
				t.Fatalf("WaitForReadOnly = %+v, %v; want every node gone", res, err)
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
