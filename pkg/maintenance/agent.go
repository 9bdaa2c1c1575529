package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/storage"
)

// DefaultHeartbeat is how often daemons read the lease and write their
// heartbeat.
const DefaultHeartbeat = 2 * time.Second

// HeartbeatEnv overrides DefaultHeartbeat (a Go duration, "500ms"), for
// daemons and for jobs judging which nodes are gone alike.
const HeartbeatEnv = "REGCTL_CLUSTER_HEARTBEAT"

// HeartbeatFromEnv is the interval HeartbeatEnv sets, or DefaultHeartbeat.
func HeartbeatFromEnv() (time.Duration, error) {
	v := os.Getenv(HeartbeatEnv)
	if v == "" {
		return DefaultHeartbeat, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 2s", HeartbeatEnv, v)
	}
	return d, nil
}

// Switch is the registry server an Agent drives (*registryd.Server).
type Switch interface {
	// ReadOnly is the configured read-only mode.
	ReadOnly() bool
	SetMaintenance(reason string)
	ClearMaintenance()
	// WaitWritesIdle returns once no admitted write is running.
	WaitWritesIdle(ctx context.Context) error
}

// Agent is a daemon's side of maintenance: every Interval it reads the
// lease (one GetContent), switches the server's maintenance mode to
// match, and writes the node's heartbeat with its acknowledgement.
//
// It fails closed: when the lease cannot be read GoneAfter times in a
// row (the bucket is unreachable, say), the server refuses writes until
// it can be read again, since a job may be running unseen.
type Agent struct {
	Driver storage.Driver
	Server Switch
	// Node is the fixed part of the heartbeat: ID, Addr, Version, PID,
	// Host. The agent fills in the rest.
	Node     Node
	Interval time.Duration // DefaultHeartbeat when 0
	Log      *slog.Logger

	mu       sync.Mutex
	cause    string // what maintenance is on for: "" (none), "lease:<id>", "unreadable", "corrupt:<id>"
	reason   string
	ack      string
	failures int  // lease reads failed in a row
	waiting  bool // logged that writes in flight hold the ack back
	hbFailed bool
	expired  string    // id of the expired lease already logged
	pruned   time.Time // last PruneNodes (prune.go)
	lastRead time.Time // last successful read of the lease
	lastBeat time.Time // LastSeen of the last heartbeat written

	// written is the LastSeen of the last heartbeat written (nil before
	// the first), and clk the clock of the last Tick: WriteFence reads
	// them without mu, on the path of every write.
	written atomic.Pointer[time.Time]
	clk     atomic.Pointer[clockHolder]

	// afterLeaseRead, set by tests, runs between Tick's read of the
	// lease and its switch, to force an interleaving with a job.
	afterLeaseRead func()
}

type clockHolder struct{ clock.Clock }

// causeUnheard: the node's heartbeat has not been written for so long
// that jobs are about to count it as gone and stop waiting for it; it
// must not write while a job may run unseen.
const causeUnheard = "unheard"

// unheardAfter is how long after its last heartbeat written a node stops
// taking writes: half an interval before readers count it gone.
func unheardAfter(iv time.Duration) time.Duration { return GoneAfter*iv - iv/2 }

func (a *Agent) interval() time.Duration {
	if a.Interval <= 0 {
		return DefaultHeartbeat
	}
	return a.Interval
}

func (a *Agent) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Tick runs one round: read the lease, switch, write the heartbeat. The
// daemon runs one before it accepts connections, so that a job already
// running finds it read-only from its first request.
//
// Until a heartbeat has been written (the first tick, in the daemon),
// Tick writes one, with no ack, before it reads the lease. A job writes
// first too: it creates the lease, then lists the nodes. Each side
// writes, then reads what the other writes, on a storage that reads
// its own writes (S3 and the filesystem do), so at least one read sees
// the other's write: if the node's read missed the lease, the read came
// before the lease was written, so the node's heartbeat was written
// before that too, and the job's listing (after the lease) finds it
// and waits for its ack; otherwise the node sees the lease and refuses
// writes before it serves. Reading first leaves a gap: the read misses
// the lease, the job lists the nodes before the heartbeat lands, and
// neither side knows of the other while the node takes writes.
func (a *Agent) Tick(ctx context.Context) {
	a.clk.Store(&clockHolder{clockOf(ctx)})
	if a.written.Load() == nil {
		a.register(ctx)
	}
	iv := a.interval()
	// Storage calls are bounded by the interval, so an unreachable
	// storage counts as failures at the heartbeat's pace. The read runs
	// unlocked, so that Run's watchdog can fail closed meanwhile.
	rctx, cancel := context.WithTimeout(ctx, iv)
	info, corrupt, err := readLease(rctx, a.Driver)
	cancel()
	if a.afterLeaseRead != nil {
		a.afterLeaseRead()
	}
	n, ok := a.apply(ctx, info, corrupt, err)
	if !ok {
		return
	}
	// The heartbeat write runs unlocked too, for the watchdog.
	werr := a.writeHeartbeat(ctx, n)
	a.mu.Lock()
	a.heartbeatDone(ctx, n, werr)
	a.mu.Unlock()
}

// register writes the heartbeat before the lease is read (see Tick).
func (a *Agent) register(ctx context.Context) {
	a.mu.Lock()
	n := a.heartbeatNode(clockOf(ctx).Now())
	a.mu.Unlock()
	err := a.writeHeartbeat(ctx, n)
	a.mu.Lock()
	a.heartbeatDone(ctx, n, err)
	a.mu.Unlock()
}

// apply switches maintenance to match what the lease read found and
// returns the heartbeat to write; false when ctx has ended.
func (a *Agent) apply(ctx context.Context, info LeaseInfo, corrupt bool, err error) (Node, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return Node{}, false
	}
	now := clockOf(ctx).Now()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		a.readable(now)
		a.leave()
	case err != nil:
		a.failures++
		switch {
		case a.failures >= GoneAfter && a.cause == "":
			a.log().Error("cannot read the maintenance lease: refusing writes until it can be read", "failures", a.failures, "err", err)
			a.enter(ctx, "unreadable", "the maintenance lease cannot be read (is the storage reachable?)", nil)
		case a.failures == 1:
			a.log().Warn("cannot read the maintenance lease", "err", err)
		}
	case corrupt:
		a.readable(now)
		if a.cause != "corrupt:"+info.ID {
			a.log().Error("the maintenance lease is corrupt: refusing writes until a maintenance job replaces it", "path", LeasePath)
		}
		a.enter(ctx, "corrupt:"+info.ID, "the maintenance lease is corrupt", nil)
	case info.Expired(now):
		a.readable(now)
		if a.expired != info.ID {
			a.expired = info.ID
			a.log().Warn("maintenance lease expired: its holder stopped renewing it (crashed?)", "holder", info.Holder, "reason", info.Reason, "expired", info.Expires)
		}
		a.leave()
	default:
		a.readable(now)
		a.enter(ctx, "lease:"+info.ID, info.Reason+" by "+info.Holder, &info)
	}
	return a.heartbeatNode(now), true
}

func (a *Agent) readable(now time.Time) {
	a.lastRead = now
	if a.failures >= GoneAfter {
		a.log().Info("the maintenance lease can be read again", "after_failures", a.failures)
	}
	a.failures = 0
}

// enter switches maintenance on for cause (again only when the cause
// changes) and, for a lease, acknowledges it once no write is in flight.
func (a *Agent) enter(ctx context.Context, cause, reason string, l *LeaseInfo) {
	if a.cause != cause {
		a.Server.SetMaintenance(reason)
		a.cause, a.reason, a.ack, a.waiting = cause, reason, "", false
		attrs := []any{"reason", reason}
		if l != nil {
			attrs = append(attrs, "expires", l.Expires.Local().Format(time.RFC3339))
		}
		a.log().Info("maintenance: refusing writes", attrs...)
	}
	if l == nil || a.ack == l.Ack() {
		return
	}
	// Writes admitted before the switch may still be running: ack only
	// once they are done, waiting at most half an interval per round
	// so the heartbeat keeps its pace.
	wctx, cancel := context.WithTimeout(ctx, a.interval()/2)
	err := a.Server.WaitWritesIdle(wctx)
	cancel()
	if err != nil {
		if !a.waiting {
			a.waiting = true
			a.log().Info("maintenance: waiting for writes in flight to finish before acknowledging")
		}
		return
	}
	a.ack = l.Ack()
	a.log().Info("maintenance: read-only with no write in flight; acknowledged", "holder", l.Holder, "reason", l.Reason)
}

// leave ends maintenance, if it is on.
func (a *Agent) leave() {
	if a.cause == "" || a.cause == causeUnheard {
		// Unheard ends with a heartbeat written (heartbeatDone).
		return
	}
	a.end()
}

// end ends maintenance whatever its cause.
func (a *Agent) end() {
	a.Server.ClearMaintenance()
	a.cause, a.reason, a.ack, a.waiting = "", "", "", false
	if a.Server.ReadOnly() {
		a.log().Info("maintenance ended; still read-only by configuration")
	} else {
		a.log().Info("maintenance ended: accepting writes again")
	}
}

// heartbeatNode is the heartbeat to write now.
func (a *Agent) heartbeatNode(now time.Time) Node {
	n := a.Node
	var why []string
	if a.Server.ReadOnly() {
		why = append(why, "config")
	}
	if a.cause != "" {
		why = append(why, "maintenance: "+a.reason)
	}
	n.ReadOnly, n.ReadOnlyReason = len(why) > 0, strings.Join(why, "; ")
	n.MaintenanceAck = a.ack
	n.IntervalMS = a.interval().Milliseconds()
	n.LastSeen = now
	return n
}

func (a *Agent) writeHeartbeat(ctx context.Context, n Node) error {
	hctx, cancel := context.WithTimeout(ctx, a.interval())
	defer cancel()
	return Heartbeat(hctx, a.Driver, n)
}

// heartbeatDone records a heartbeat write's outcome.
func (a *Agent) heartbeatDone(ctx context.Context, n Node, err error) {
	switch {
	case err != nil && ctx.Err() == nil && !a.hbFailed:
		a.hbFailed = true
		a.log().Warn("cannot write this node's heartbeat: maintenance jobs will count it as gone", "err", err)
	case err == nil && a.hbFailed:
		a.hbFailed = false
		a.log().Info("heartbeat written again")
	}
	if err != nil {
		return
	}
	a.lastBeat = n.LastSeen
	a.written.Store(&n.LastSeen)
	if a.cause == causeUnheard {
		a.end()
	}
}

// Run ticks every Interval until ctx ends, then removes the heartbeat.
// Cancel ctx only once the server has stopped taking requests: until
// then a job must keep seeing, and waiting for, this node.
func (a *Agent) Run(ctx context.Context) {
	t := clockOf(ctx).NewTicker(a.interval())
	defer t.Stop()
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go a.watchdog(wctx)
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := RemoveNode(rctx, a.Driver, a.Node.ID); err != nil {
				a.log().Warn("cannot remove this node's heartbeat; it will show as gone", "err", err)
			}
			return
		case <-t.C():
			a.Tick(ctx)
			a.prune(ctx)
		}
	}
}

// watchdog fails closed on time, not only on failed reads: once the
// lease has not been read for GoneAfter intervals, writes stop, even
// while a read is still hanging (each may take an interval to time out,
// so counting failures alone takes longer). Tick ends it once the lease
// reads again.
func (a *Agent) watchdog(ctx context.Context) {
	iv := a.interval()
	clk := clockOf(ctx)
	t := clk.NewTicker(max(iv/10, 10*time.Millisecond))
	defer t.Stop()
	a.mu.Lock()
	if a.lastRead.IsZero() {
		a.lastRead = clk.Now()
	}
	if a.lastBeat.IsZero() {
		a.lastBeat = clk.Now()
	}
	a.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		a.fence(ctx, clk.Now())
	}
}

// WriteFence says why this node must not commit a write now, "" when
// it may. The watchdog fences from a goroutine, which a process stopped
// for a while (SIGSTOP, a VM freeze, a long pause) may resume without
// running before it serves a request; so the server asks this at the
// point of commitment too. A node must not write once its last
// heartbeat written is unheardAfter old (the watchdog's threshold),
// since jobs are about to count it as gone; nor before its first
// heartbeat, since jobs do not know of it. Time is the clock of Tick's
// context: the real one, whose readings are monotonic, in production.
// It takes no lock: the server calls it on every write, and under its
// own lock, which the agent takes after mu.
func (a *Agent) WriteFence() string {
	w := a.written.Load()
	if w == nil {
		return "this node's heartbeat has not been written yet (is the storage reachable?)"
	}
	var clk clock.Clock = clock.Real
	if h := a.clk.Load(); h != nil {
		clk = h.Clock
	}
	if clk.Since(*w) >= unheardAfter(a.interval()) {
		return reasonUnheard
	}
	return ""
}

// reasonUnheard is the reason writes are refused for causeUnheard.
const reasonUnheard = "this node's heartbeat cannot be written (is the storage reachable?)"

// fence is one look of the watchdog at now: writes stop once the lease
// has gone unread for GoneAfter intervals, or the heartbeat unwritten
// for unheardAfter.
func (a *Agent) fence(ctx context.Context, now time.Time) {
	iv := a.interval()
	a.mu.Lock()
	defer a.mu.Unlock()
	if since := now.Sub(a.lastRead); a.cause == "" && since >= GoneAfter*iv {
		a.failures = max(a.failures, GoneAfter)
		a.log().Error("cannot read the maintenance lease: refusing writes until it can be read", "unread_for", since.Round(time.Millisecond))
		a.enter(ctx, "unreadable", "the maintenance lease cannot be read (is the storage reachable?)", nil)
	}
	if since := now.Sub(a.lastBeat); a.cause == "" && since >= unheardAfter(iv) {
		a.log().Error("this node's heartbeat has not been written: refusing writes, since maintenance jobs are about to count it as gone", "unwritten_for", since.Round(time.Millisecond))
		a.enter(ctx, causeUnheard, reasonUnheard, nil)
	}
}
