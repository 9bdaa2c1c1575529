package maintenance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

// jobEnv is a storage for RunJob tests, on a fake clock.
type jobEnv struct {
	ctx context.Context // carries clk
	clk *clock.Fake
	drv storage.Driver
	// fs is the storage's config: its run lock is a flock file. obj
	// names another driver, so that its run lock is the object
	// RunLockObject in drv, renewed and losable like the lease.
	fs, obj distconfig.Storage
}

func newJobEnv(t *testing.T) *jobEnv {
	t.Helper()
	root := t.TempDir()
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	return &jobEnv{
		ctx: WithClock(t.Context(), clk), clk: clk, drv: d,
		fs:  distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": root}},
		obj: distconfig.Storage{Driver: "s3"},
	}
}

const jobTTL = 30 * time.Second

// job is a Job on e that takes the run lock of st and the lease.
func (e *jobEnv) job(st distconfig.Storage) Job {
	return Job{
		Command:  "registry-garbage-collect",
		Driver:   e.drv,
		RunLock:  &st,
		ReadOnly: &ReadOnly{Reason: "garbage collection", Interval: 2 * time.Second, AckTimeout: time.Minute},
		TTL:      jobTTL,
	}
}

// jobRun is RunJob running in the background.
type jobRun struct {
	started chan struct{} // closed when the work starts
	done    chan error
	res     JobResult
}

// start runs job with work in the background; work is told when it
// starts.
func (e *jobEnv) start(ctx context.Context, job Job, work Work) *jobRun {
	r := &jobRun{started: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		var err error
		r.res, err = RunJob(ctx, job, func(ctx context.Context, l *Lease) error {
			close(r.started)
			return work(ctx, l)
		})
		r.done <- err
	}()
	return r
}

func (r *jobRun) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-r.started:
	case err := <-r.done:
		t.Fatalf("RunJob returned before the work started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the work never started")
	}
}

func (r *jobRun) wait(t *testing.T, why string) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("RunJob still running 10 s after %s", why)
		return nil
	}
}

// untilStopped is work that runs until its context ends, and sends
// why it ended.
func untilStopped(cause chan<- error) Work {
	return func(ctx context.Context, _ *Lease) error {
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	}
}

// waitTimers waits until n timers of the fake clock are armed.
func (e *jobEnv) waitTimers(t *testing.T, n int) {
	t.Helper()
	waitTimers(t, e.clk, n)
}

// checkReleased fails unless the lease is gone and the run lock of st
// can be taken again.
func (e *jobEnv) checkReleased(t *testing.T, st distconfig.Storage) {
	t.Helper()
	if cur, err := Current(e.ctx, e.drv); cur != nil || err != nil {
		t.Errorf("the lease is still held: %+v, %v", cur, err)
	}
	lk, err := LockRuns(e.ctx, st, e.drv, "next run", jobTTL)
	if err != nil {
		t.Errorf("the run lock is still held: %v", err)
		return
	}
	lk.Release()
}

// holds reports whether the job's lease is in the storage and its run
// lock refuses another run.
func (e *jobEnv) holds(st distconfig.Storage) (lease, lock bool) {
	cur, _ := Current(e.ctx, e.drv)
	lk, err := LockRuns(e.ctx, st, e.drv, "probe", jobTTL)
	if err == nil {
		lk.Release()
	}
	return cur != nil, errors.Is(err, ErrRunInProgress)
}

// While another run holds the run lock, a job does not start: no
// lease, no work, no record, and the refusal names the holder.
func TestRunJobRunLockContention(t *testing.T) {
	for _, kind := range []string{"flock", "object"} {
		t.Run(kind, func(t *testing.T) {
			e := newJobEnv(t)
			st := e.fs
			if kind == "object" {
				st = e.obj
			}
			other, err := LockRuns(e.ctx, st, e.drv, "registry-cleanup", jobTTL)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Release()
			job := e.job(st)
			job.Record = func(err error) { t.Errorf("recorded %v for a run that never started", err) }
			ran := false
			_, err = RunJob(e.ctx, job, func(context.Context, *Lease) error { ran = true; return nil })
			if !errors.Is(err, ErrRunInProgress) || !strings.Contains(err.Error(), "registry-cleanup") {
				t.Errorf("RunJob = %v, want ErrRunInProgress naming the holder", err)
			}
			if ran {
				t.Error("the work ran without the run lock")
			}
			if cur, _ := Current(e.ctx, e.drv); cur != nil {
				t.Errorf("a refused job left a lease: %+v", cur)
			}
		})
	}
}

// A job whose lease is taken over (or whose run lock is deleted) while
// it works is stopped: its context ends with ErrLost as the cause, its
// error wraps ErrLost, and it releases what it still holds without
// touching its successor's lease.
func TestRunJobLostMidRunStopsTheWork(t *testing.T) {
	t.Run("lease", func(t *testing.T) {
		e := newJobEnv(t)
		cause := make(chan error, 1)
		r := e.start(e.ctx, e.job(e.fs), untilStopped(cause))
		r.waitStarted(t)
		successor := LeaseInfo{ID: newID(), Holder: "other/2/migrate-storage", Reason: "cutover",
			Started: e.clk.Now().UTC(), Expires: e.clk.Now().Add(time.Hour).UTC()}
		putLease(t, e.drv, successor)
		e.waitTimers(t, 1) // the lease's renewal
		e.clk.Advance(jobTTL / 3)
		err := r.wait(t, "its lease was taken over")
		if c := <-cause; !errors.Is(c, ErrLost) || !strings.Contains(c.Error(), "other/2/migrate-storage") {
			t.Errorf("the work's context ended with %v, want ErrLost naming the new holder", c)
		}
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "maintenance lease lost") {
			t.Errorf("RunJob = %v, want the lost lease", err)
		}
		if cur, _ := Current(e.ctx, e.drv); cur == nil || cur.ID != successor.ID {
			t.Errorf("the successor's lease is gone: %+v", cur)
		}
		if _, lock := e.holds(e.fs); lock {
			t.Error("the run lock is still held")
		}
	})
	t.Run("run lock", func(t *testing.T) {
		e := newJobEnv(t)
		cause := make(chan error, 1)
		r := e.start(e.ctx, e.job(e.obj), untilStopped(cause))
		r.waitStarted(t)
		if err := e.drv.Delete(e.ctx, RunLockObject); err != nil {
			t.Fatal(err)
		}
		e.waitTimers(t, 2) // the lock's and the lease's renewal
		e.clk.Advance(jobTTL / 3)
		err := r.wait(t, "its run lock was deleted")
		if c := <-cause; !errors.Is(c, ErrLost) || !strings.Contains(c.Error(), "run lock lost") {
			t.Errorf("the work's context ended with %v, want the lost run lock", c)
		}
		if !errors.Is(err, ErrLost) {
			t.Errorf("RunJob = %v, want ErrLost", err)
		}
		e.checkReleased(t, e.obj)
	})
}

// Ctrl-C (the caller's context ends) stops the work and releases the
// lease and the run lock, although the context they were taken with is
// gone.
func TestRunJobInterruptReleases(t *testing.T) {
	for _, kind := range []string{"flock", "object"} {
		t.Run(kind, func(t *testing.T) {
			e := newJobEnv(t)
			st := e.fs
			if kind == "object" {
				st = e.obj
			}
			ctx, interrupt := context.WithCancelCause(e.ctx)
			cause := make(chan error, 1)
			r := e.start(ctx, e.job(st), untilStopped(cause))
			r.waitStarted(t)
			if lease, lock := e.holds(st); !lease || !lock {
				t.Fatalf("while the work runs: lease %v, run lock %v; want both", lease, lock)
			}
			interrupt(errors.New("interrupt signal received"))
			err := r.wait(t, "it was interrupted")
			if c := <-cause; c == nil || c.Error() != "interrupt signal received" {
				t.Errorf("the work's context ended with %v, want the interrupt", c)
			}
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLost) {
				t.Errorf("RunJob = %v, want context.Canceled", err)
			}
			e.checkReleased(t, st)
		})
	}
}

// A failing work's error comes back as is, after the lease and the run
// lock are released; the record tells the failure while both are still
// held.
func TestRunJobWorkErrorReleases(t *testing.T) {
	for _, kind := range []string{"flock", "object"} {
		t.Run(kind, func(t *testing.T) {
			e := newJobEnv(t)
			st := e.fs
			if kind == "object" {
				st = e.obj
			}
			boom := errors.New("sweep: access denied")
			job := e.job(st)
			var records []error
			job.Record = func(err error) {
				records = append(records, err)
				if lease, lock := e.holds(st); !lease || !lock {
					t.Errorf("recorded with lease %v, run lock %v; want both still held", lease, lock)
				}
			}
			_, err := RunJob(e.ctx, job, func(context.Context, *Lease) error { return boom })
			if !errors.Is(err, boom) || err.Error() != boom.Error() {
				t.Errorf("RunJob = %v, want the work's error as is", err)
			}
			if len(records) != 1 || !errors.Is(records[0], boom) {
				t.Errorf("records %v, want the work's error once", records)
			}
			e.checkReleased(t, st)
		})
	}
}

// FlushAfter runs the work and flushes after it, while the lease and
// the run lock are held; what it flushed and its error come back.
func TestRunJobFlushesAfterTheWork(t *testing.T) {
	e := newJobEnv(t)
	var mu sync.Mutex
	var steps []string
	step := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, s)
	}
	flushErr := errors.New("redis: connection refused")
	job := e.job(e.fs)
	job.FlushAfter = func(ctx context.Context, work func(context.Context) error) (int, error) {
		step("ping")
		err := work(ctx)
		if lease, lock := e.holds(e.fs); !lease || !lock {
			t.Errorf("flushing with lease %v, run lock %v; want both held", lease, lock)
		}
		step("flush")
		return 7, errors.Join(err, flushErr)
	}
	job.Record = func(error) { step("record") }
	res, err := RunJob(e.ctx, job, func(context.Context, *Lease) error { step("work"); return nil })
	if !errors.Is(err, flushErr) {
		t.Errorf("RunJob = %v, want the flush's error", err)
	}
	if res.Flushed != 7 {
		t.Errorf("Flushed = %d, want 7", res.Flushed)
	}
	if want := []string{"ping", "work", "flush", "record"}; !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q", steps, want)
	}
	e.checkReleased(t, e.fs)
}

// The work starts only once every live daemon has acknowledged the
// lease; OnReadOnly is told first. When the job ends, the daemons take
// writes again before RunJob returns.
func TestRunJobWaitsForTheDaemons(t *testing.T) {
	e := newJobEnv(t)
	srv := &fakeServer{}
	const iv = 2 * time.Second
	a := &Agent{Driver: e.drv, Server: srv, Node: LocalNode("node-1", "10.0.0.1:5000", "test"), Interval: iv}
	a.Tick(e.ctx)
	job := e.job(e.fs)
	var told *WaitResult
	job.ReadOnly.OnReadOnly = func(w WaitResult) { told = &w }
	r := e.start(e.ctx, job, func(context.Context, *Lease) error {
		if on, _ := srv.state(); !on {
			t.Error("the work runs while the daemon takes writes")
		}
		return nil
	})
	// The lease's renewal, the ack timeout and the wait's next poll.
	e.waitTimers(t, 3)
	select {
	case <-r.started:
		t.Fatal("the work started before the daemon acknowledged")
	default:
	}
	a.Tick(e.ctx) // reads the lease, switches, acknowledges
	e.clk.Advance(iv / 4)
	r.waitStarted(t)
	if told == nil || told.Acked != 1 || told.Live != 1 {
		t.Errorf("OnReadOnly got %+v, want 1 live daemon acknowledged", told)
	}
	// Released: the daemon notices at its next tick, and RunJob waits
	// for that.
	waitUntil(t, 10*time.Second, "the lease released", func() bool {
		_, err := e.drv.Stat(e.ctx, LeasePath)
		return errors.Is(err, storage.ErrNotFound)
	})
	e.waitTimers(t, 1) // RunJob waits for the daemon to notice
	select {
	case err := <-r.done:
		t.Fatalf("RunJob returned (%v) while the daemon still refused writes", err)
	default:
	}
	a.Tick(e.ctx)
	if on, _ := srv.state(); on {
		t.Fatal("the daemon is still in maintenance after the release")
	}
	e.clk.Advance(iv / 4)
	if err := r.wait(t, "the daemon took writes again"); err != nil {
		t.Fatal(err)
	}
	if r.res.ReadOnly == nil || r.res.ReadOnly.Acked != 1 {
		t.Errorf("JobResult.ReadOnly = %+v", r.res.ReadOnly)
	}
}

// A live daemon that does not acknowledge within AckTimeout stops the
// job before its work: ErrNotAcknowledged names it, the failure is
// recorded, and the lease and lock are released.
func TestRunJobNotAcknowledged(t *testing.T) {
	e := newJobEnv(t)
	// A daemon that heartbeats but never switches (an old regctl).
	if err := Heartbeat(e.ctx, e.drv, Node{ID: "stuck", Addr: "10.0.0.9:5000", IntervalMS: time.Hour.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	job := e.job(e.fs)
	var recorded error
	job.Record = func(err error) { recorded = err }
	r := e.start(e.ctx, job, func(context.Context, *Lease) error { return nil })
	e.waitTimers(t, 3)
	e.clk.Advance(job.ReadOnly.AckTimeout)
	err := r.wait(t, "its ack timeout")
	if !errors.Is(err, ErrNotAcknowledged) || !strings.Contains(err.Error(), "stuck (10.0.0.9:5000)") {
		t.Errorf("RunJob = %v, want ErrNotAcknowledged naming the daemon", err)
	}
	select {
	case <-r.started:
		t.Error("the work ran without the acknowledgement")
	default:
	}
	if !errors.Is(recorded, ErrNotAcknowledged) {
		t.Errorf("recorded %v", recorded)
	}
	e.checkReleased(t, e.fs)
}

// A lease the work retires stays when the job ends, and RunJob does
// not wait for the daemons that acknowledged it to take writes again:
// they never will.
func TestRunJobKeepsARetiredLease(t *testing.T) {
	e := newJobEnv(t)
	r := e.start(e.ctx, e.job(e.fs), func(ctx context.Context, l *Lease) error {
		// A daemon started during the job, and acknowledged.
		if err := Heartbeat(ctx, e.drv, Node{ID: "node-1", MaintenanceAck: l.Info().Ack(), IntervalMS: time.Hour.Milliseconds()}); err != nil {
			return err
		}
		return l.Retire(ctx, "moved to S3")
	})
	if err := r.wait(t, "the work retired the lease"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := Current(e.ctx, e.drv); cur == nil || cur.Reason != "moved to S3" {
		t.Errorf("after the job: %+v, want the retired lease", cur)
	}
}

// The zero Job (a dry run) locks nothing: it just runs the work and
// records how it went.
func TestRunJobWithoutLocks(t *testing.T) {
	e := newJobEnv(t)
	other, err := LockRuns(e.ctx, e.fs, e.drv, "registry-cleanup", jobTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	var recorded []error
	res, err := RunJob(e.ctx, Job{Record: func(err error) { recorded = append(recorded, err) }},
		func(_ context.Context, l *Lease) error {
			if l != nil {
				t.Error("a lease without ReadOnly")
			}
			return nil
		})
	if err != nil || res.ReadOnly != nil || len(recorded) != 1 || recorded[0] != nil {
		t.Errorf("RunJob = %+v, %v; recorded %v", res, err, recorded)
	}
}
