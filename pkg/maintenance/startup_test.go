package maintenance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"regctl/pkg/storage"
)

// signalsListing is a job's driver that tells when it has listed the
// nodes.
type signalsListing struct {
	*storage.Filesystem
	once   sync.Once
	listed chan struct{}
}

func (s *signalsListing) List(ctx context.Context, p string) ([]string, error) {
	paths, err := s.Filesystem.List(ctx, p)
	if p == NodesDir {
		s.once.Do(func() { close(s.listed) })
	}
	return paths, err
}

// A daemon starting while a job starts: its first read of the lease
// comes before the job creates the lease, and the job lists the nodes
// before the daemon's first tick ends. Because the first tick writes
// the heartbeat before it reads the lease, the job's listing finds the
// node and waits for its ack, so the job's work only starts once the
// node refuses writes. (With the read first, the listing finds no node
// and the work starts while the node takes writes.)
func TestAgentStartupRegistersBeforeReadingTheLease(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const iv = time.Second
	srv := &fakeServer{}
	a := &Agent{Driver: d, Server: srv, Node: LocalNode("node-1", "", "test"), Interval: iv}
	job := &signalsListing{Filesystem: d, listed: make(chan struct{})}

	leaseRead := make(chan error, 1)
	a.afterLeaseRead = func() {
		a.afterLeaseRead = nil // only the first tick's read
		_, err := d.Stat(ctx, LeasePath)
		leaseRead <- err
		select { // the job creates the lease and lists the nodes now
		case <-job.listed:
		case <-time.After(30 * time.Second):
			t.Error("the job never listed the nodes")
		}
	}
	firstTick := make(chan struct{})
	go func() {
		defer close(firstTick)
		a.Tick(ctx) // the daemon's start (startAgent)
	}()
	if err := <-leaseRead; !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the lease exists before the node's first read: %v", err)
	}

	type started struct {
		maintenance bool
		res         *WaitResult
	}
	workStarted := make(chan started, 1)
	jobDone := make(chan error, 1)
	go func() {
		var res *WaitResult
		_, err := RunJob(ctx, Job{
			Command: "registry-garbage-collect", Driver: job,
			ReadOnly: &ReadOnly{Reason: "garbage collection", Interval: iv, AckTimeout: time.Minute,
				OnReadOnly: func(r WaitResult) { res = &r }},
		}, func(context.Context, *Lease) error {
			on, _ := srv.state()
			workStarted <- started{on, res}
			return nil
		})
		jobDone <- err
	}()

	<-firstTick
	// The daemon ticks on until the job's work starts.
	var s started
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case s = <-workStarted:
			break wait
		case <-deadline:
			t.Fatal("the job's work never started")
		default:
			a.Tick(ctx)
		}
	}
	if err := <-jobDone; err != nil {
		t.Fatal(err)
	}
	if !s.maintenance {
		t.Errorf("the job's work started while node-1 took writes (the job saw %d live nodes)", s.res.Live)
	}
	if s.res == nil || s.res.Live != 1 || s.res.Acked != 1 {
		t.Errorf("the job's wait: %+v, want node-1 live and acknowledged", s.res)
	}
}
