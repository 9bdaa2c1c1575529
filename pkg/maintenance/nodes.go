package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"regctl/pkg/storage"
)

// GoneAfter is how many heartbeat intervals a node may miss before it
// counts as gone (crashed, killed, cut off) and is no longer waited for.
const GoneAfter = 3

// Node is a daemon's heartbeat: nodes/<id>.json.
type Node struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	// ReadOnly is whether the node refuses writes, for whatever reason.
	ReadOnly bool `json:"read_only"`
	// ReadOnlyReason is "config" (storage.maintenance.readonly.enabled),
	// "maintenance: <reason> by <holder>", or both joined with "; ".
	ReadOnlyReason string `json:"read_only_reason,omitempty"`
	// MaintenanceAck is the Ack of the lease the node has switched to
	// read-only for, with no write left in flight; empty otherwise.
	MaintenanceAck string `json:"maintenance_ack,omitempty"`
	// IntervalMS is the node's heartbeat interval in milliseconds:
	// readers never judge it gone sooner than GoneAfter of its own
	// intervals, whatever interval they assume.
	IntervalMS int64     `json:"interval_ms,omitempty"`
	LastSeen   time.Time `json:"last_seen"`
}

// LocalNode is the fixed part of this process's heartbeat.
func LocalNode(id, addr, version string) Node {
	return Node{ID: id, Addr: addr, Version: version, PID: os.Getpid(), Host: hostname()}
}

// Acks reports whether the node has switched to read-only for lease l.
func (n Node) Acks(l LeaseInfo) bool {
	if n.MaintenanceAck == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, n.MaintenanceAck)
	return err == nil && t.Equal(l.Started)
}

func (n Node) String() string {
	if n.Addr == "" {
		return n.ID
	}
	return n.ID + " (" + n.Addr + ")"
}

// NodeStatus is a heartbeat as seen by a reader.
type NodeStatus struct {
	Node
	// Gone is set when the node was last seen more than GoneAfter
	// intervals ago.
	Gone bool `json:"gone"`
	// Problem says why a heartbeat file could not be read; such a node
	// counts as gone.
	Problem string `json:"problem,omitempty"`
}

// Heartbeat writes n's heartbeat, replacing the previous one atomically.
// A zero LastSeen is set to now.
func Heartbeat(ctx context.Context, drv storage.Driver, n Node) error {
	if !validID.MatchString(n.ID) {
		return fmt.Errorf("heartbeat: invalid node id %q", n.ID)
	}
	if n.LastSeen.IsZero() {
		n.LastSeen = clockOf(ctx).Now()
	}
	n.LastSeen = n.LastSeen.UTC()
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if err := drv.PutContent(ctx, NodePath(n.ID), b); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// RemoveNode deletes a node's heartbeat (a clean shutdown); a heartbeat
// that is already gone is no error.
func RemoveNode(ctx context.Context, drv storage.Driver, id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("remove node: invalid node id %q", id)
	}
	if err := drv.Delete(ctx, NodePath(id)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

// Nodes lists the heartbeats, sorted by id, each marked Gone when its
// last_seen is more than GoneAfter intervals old by this machine's clock
// (the larger of interval and the node's own).
func Nodes(ctx context.Context, drv storage.Driver, interval time.Duration) ([]NodeStatus, error) {
	paths, err := drv.List(ctx, NodesDir)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	now := clockOf(ctx).Now()
	var nodes []NodeStatus
	for _, p := range paths {
		id, ok := strings.CutSuffix(path.Base(p), ".json")
		if !ok || !validID.MatchString(id) {
			continue
		}
		b, err := drv.GetContent(ctx, p)
		if errors.Is(err, storage.ErrNotFound) {
			continue // removed since the listing: a clean shutdown
		}
		if err != nil {
			return nil, fmt.Errorf("reading node %s: %w", id, err)
		}
		var st NodeStatus
		if err := json.Unmarshal(b, &st.Node); err != nil {
			st = NodeStatus{Node: Node{ID: id}, Gone: true, Problem: "unreadable heartbeat: " + err.Error()}
		} else {
			st.ID = id // the file name is what RemoveNode and Heartbeat use
			iv := max(interval, time.Duration(st.IntervalMS)*time.Millisecond)
			st.Gone = now.Sub(st.LastSeen) > GoneAfter*iv
		}
		nodes = append(nodes, st)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}
