package maintenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/storage"
)

// DefaultLeaseTTL is a lease lifetime for jobs: a crashed job holds the
// cluster read-only for at most this long.
const DefaultLeaseTTL = 30 * time.Second

// Tunables of the lease protocol (variables so tests can shorten them).
var (
	// takeoverStale is how old a takeover lock must be before it counts
	// as left by a crashed process and is broken. Locks are held for a
	// few requests, so this is far beyond any live holder.
	takeoverStale = time.Minute
	// contendedWait bounds how long Acquire waits while another process
	// holds the takeover lock of an expired lease.
	contendedWait = 5 * time.Second
)

// ErrHeld is wrapped by Acquire's error when a live lease exists.
var ErrHeld = errors.New("maintenance lease is held")

// ErrLost is wrapped by Lease.Err once the lease is no longer ours.
var ErrLost = errors.New("maintenance lease lost")

// ErrCorrupt is wrapped by Current's error when lease.json cannot be
// parsed.
var ErrCorrupt = errors.New("maintenance lease is unreadable")

// errBusy: another process holds the takeover lock of a lease.
var errBusy = errors.New("another process is changing the maintenance lease")

// LeaseInfo is the content of lease.json.
type LeaseInfo struct {
	// ID is a random token of this lease: it tells a holder's lease from
	// the one that replaced it, even for the same holder.
	ID string `json:"id"`
	// Holder is who holds it: "host/pid/command".
	Holder string `json:"holder"`
	// Reason is what the job is ("garbage collection").
	Reason string `json:"reason"`
	// Host and PID are where the holder runs (also in Holder), for
	// people reading a lock left by a crash.
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
}

// Expired reports whether the lease is past its expiry at now.
func (l LeaseInfo) Expired(now time.Time) bool { return !now.Before(l.Expires) }

// Ack is what a node puts in its heartbeat's maintenance_ack once it has
// switched to read-only for this lease: its start time, to the
// nanosecond, so it names one lease.
func (l LeaseInfo) Ack() string { return l.Started.UTC().Format(time.RFC3339Nano) }

func (l LeaseInfo) String() string {
	return fmt.Sprintf("%s by %s (since %s, expires %s)", l.Reason, l.Holder,
		l.Started.Local().Format(time.RFC3339), l.Expires.Local().Format(time.RFC3339))
}

// HeldError is Acquire's error when another job holds a live lease.
type HeldError struct{ Lease LeaseInfo }

func (e *HeldError) Error() string {
	return fmt.Sprintf("%v: %s by %s, started %s, expires %s", ErrHeld, e.Lease.Reason, e.Lease.Holder,
		e.Lease.Started.Local().Format(time.RFC3339), e.Lease.Expires.Local().Format(time.RFC3339))
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Current reads the lease: nil when there is none or it has expired.
func Current(ctx context.Context, drv storage.Driver) (*LeaseInfo, error) {
	return currentAt(ctx, drv, LeasePath)
}

// currentAt reads the lease at p: nil when there is none or it has
// expired.
func currentAt(ctx context.Context, drv storage.Driver, p string) (*LeaseInfo, error) {
	info, corrupt, err := readLeaseAt(ctx, drv, p)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case corrupt:
		return nil, fmt.Errorf("%s: %w", p, ErrCorrupt)
	case info.Expired(clockOf(ctx).Now()):
		return nil, nil
	}
	return &info, nil
}

// readLease reads lease.json with one GetContent. A file that does not
// parse (or names an id unfit for a path) is reported as corrupt, with
// an id derived from its bytes, so it can be taken over like an expired
// lease: nothing renews it.
func readLease(ctx context.Context, drv storage.Driver) (info LeaseInfo, corrupt bool, err error) {
	return readLeaseAt(ctx, drv, LeasePath)
}

// readLeaseAt is readLease of the lease object at p.
func readLeaseAt(ctx context.Context, drv storage.Driver, p string) (info LeaseInfo, corrupt bool, err error) {
	b, err := drv.GetContent(ctx, p)
	if err != nil {
		return LeaseInfo{}, false, err
	}
	if json.Unmarshal(b, &info) != nil || !validID.MatchString(info.ID) || info.Expires.IsZero() {
		sum := sha256.Sum256(b)
		return LeaseInfo{ID: "corrupt-" + hex.EncodeToString(sum[:8])}, true, nil
	}
	return info, false, nil
}

// Lease is a held maintenance lease. It renews itself every ttl/3 until
// Release; when it cannot (the storage is unreachable until it expires,
// or it was taken over), Lost is closed and Err says why: the job must
// then stop, since the daemons may accept writes again.
type Lease struct {
	drv  storage.Driver
	ec   storage.ExclusiveCreator
	clk  clock.Clock
	ttl  time.Duration
	path string // LeasePath, or another lock object (RunLockObject)
	what string // "maintenance lease", for errors

	mu        sync.Mutex
	info      LeaseInfo
	err       error
	released  bool
	isRetired bool

	lost     chan struct{}
	stop     chan struct{}
	renewing chan struct{} // closed when the renewal goroutine ends
}

// Acquire takes the maintenance lease for ttl, renewed every ttl/3 until
// Release. When a live lease exists it fails with a *HeldError naming its
// holder, reason and expiry. An expired one (its holder crashed) is
// replaced: under a takeover lock, so that of several processes taking
// it over at once exactly one wins, and none can delete the lease the
// winner has just created.
func Acquire(ctx context.Context, drv storage.Driver, holder, reason string, ttl time.Duration) (*Lease, error) {
	return acquireAt(ctx, drv, LeasePath, "maintenance lease", holder, reason, ttl)
}

// acquireAt is Acquire of the lock object at p, called what in errors:
// the same protocol serves the maintenance lease and the run lock.
func acquireAt(ctx context.Context, drv storage.Driver, p, what, holder, reason string, ttl time.Duration) (*Lease, error) {
	ec, ok := storage.As[storage.ExclusiveCreator](drv)
	if !ok {
		return nil, fmt.Errorf("%s: the %s driver cannot create files exclusively", what, drv.Name())
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("%s: ttl must be positive, not %s", what, ttl)
	}
	clk := clockOf(ctx)
	start := func(info LeaseInfo) *Lease { return startLease(drv, ec, clk, ttl, p, what, info) }
	id := newID()
	// Each round either ends Acquire or follows a change made by another
	// process (a release, a takeover in progress); why says which, for
	// when they go on beyond contendedWait.
	deadline := clk.Now().Add(contendedWait)
	why := ""
	for {
		if why != "" && clk.Now().After(deadline) {
			return nil, fmt.Errorf("%s: gave up after %s: %s", what, contendedWait, why)
		}
		now := clk.Now()
		info := LeaseInfo{ID: id, Holder: holder, Reason: reason, Host: hostname(), PID: os.Getpid(), Started: now.UTC(), Expires: now.Add(ttl).UTC()}
		b, err := json.Marshal(info)
		if err != nil {
			return nil, err
		}
		err = ec.CreateExclusive(ctx, p, b)
		if err == nil {
			return start(info), nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cur, _, err := readLeaseAt(ctx, drv, p)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			why = "it kept being released and taken by others"
			continue // released meanwhile: create again
		case err != nil:
			return nil, fmt.Errorf("%s: %w", what, err)
		case cur.ID == id:
			// Our create went through but its answer was lost, and
			// a retry found our own lease (see S3.CreateExclusive).
			return start(cur), nil
		case !cur.Expired(clk.Now()):
			return nil, &HeldError{Lease: cur}
		}
		err = withTakeoverLock(ctx, clk, drv, ec, cur.ID, holder, func() error {
			// Under the lock the lease cannot change but by its
			// holder's exclusive create: check again that it is the
			// one found expired before deleting it.
			again, _, err := readLeaseAt(ctx, drv, p)
			if err != nil || again.ID != cur.ID || !again.Expired(clk.Now()) {
				return ignoreNotFound(err)
			}
			return ignoreNotFound(drv.Delete(ctx, p))
		})
		if errors.Is(err, errBusy) {
			// Another process is taking it over: see who wins.
			why = fmt.Sprintf("the expired lease of %s is being taken over by another process", cur.Holder)
			if err := clock.Sleep(ctx, clk, 20*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: replacing the expired one of %s: %w", what, cur.Holder, err)
		}
		why = fmt.Sprintf("the expired lease of %s kept coming back", cur.Holder)
	}
}

func startLease(drv storage.Driver, ec storage.ExclusiveCreator, clk clock.Clock, ttl time.Duration, p, what string, info LeaseInfo) *Lease {
	l := &Lease{
		drv: drv, ec: ec, clk: clk, ttl: ttl, path: p, what: what, info: info,
		lost: make(chan struct{}), stop: make(chan struct{}), renewing: make(chan struct{}),
	}
	go l.renewLoop()
	return l
}

// Info is the lease as last written (Expires moves with each renewal).
func (l *Lease) Info() LeaseInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Lost is closed when the lease is no longer ours.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err says why the lease was lost; nil while it is held.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Lease) markLost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = &lostError{what: l.what, err: err}
		close(l.lost)
	}
}

// lostError is Lease.Err: "maintenance lease lost: why", or the same of
// another lock object; it wraps ErrLost and why.
type lostError struct {
	what string
	err  error
}

func (e *lostError) Error() string   { return e.what + " lost: " + e.err.Error() }
func (e *lostError) Unwrap() []error { return []error{ErrLost, e.err} }

// renewLoop rewrites the expiry every ttl/3, retrying sooner after a
// failure, until Release or until the lease is lost.
func (l *Lease) renewLoop() {
	defer close(l.renewing)
	every := max(l.ttl/3, time.Millisecond)
	retry := max(l.ttl/20, time.Millisecond)
	t := l.clk.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.lost:
			return
		case <-t.C():
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := l.renew(ctx)
		cancel()
		var gone *notOursError
		switch {
		case err == nil:
			t.Reset(every)
		case errors.As(err, &gone):
			l.markLost(err)
			return
		case !l.clk.Now().Before(l.Info().Expires):
			l.markLost(fmt.Errorf("it expired before it could be renewed: %w", err))
			return
		default:
			t.Reset(retry)
		}
	}
}

// notOursError: the lease in the storage is not ours any more.
type notOursError struct{ why string }

func (e *notOursError) Error() string { return e.why }

// renew extends the lease under its takeover lock, so that no taker can
// delete it between our check and our write (and we never overwrite a
// successor's lease with ours).
func (l *Lease) renew(ctx context.Context) error {
	mine := l.Info()
	return withTakeoverLock(ctx, l.clk, l.drv, l.ec, mine.ID, mine.Holder, func() error {
		cur, _, err := readLeaseAt(ctx, l.drv, l.path)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return &notOursError{"it was deleted"}
		case err != nil:
			return err
		case cur.ID != mine.ID:
			return &notOursError{fmt.Sprintf("it was taken over by %s (%s)", cur.Holder, cur.Reason)}
		}
		now := l.clk.Now()
		if cur.Expired(now) {
			// The daemons may have gone back to writing already: the
			// job must not go on, even if nobody has taken over yet.
			return &notOursError{"it expired before it could be renewed"}
		}
		next := cur
		next.Expires = now.Add(l.ttl).UTC()
		return l.store(ctx, next)
	})
}

// store writes next as the lease and remembers it as ours.
func (l *Lease) store(ctx context.Context, next LeaseInfo) error {
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := l.drv.PutContent(ctx, l.path, b); err != nil {
		return err
	}
	l.mu.Lock()
	l.info = next
	l.mu.Unlock()
	return nil
}

// Release stops the renewal and deletes the lease if it is still ours,
// so the daemons accept writes again at their next heartbeat. Call it
// with a fresh context (not one that was cancelled to stop the job).
// Releasing twice, or a lost lease, is no error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	already := l.released
	l.released = true
	l.mu.Unlock()
	if already {
		return nil
	}
	close(l.stop)
	<-l.renewing
	mine := l.Info()
	for {
		err := withTakeoverLock(ctx, l.clk, l.drv, l.ec, mine.ID, mine.Holder, func() error {
			cur, _, err := readLeaseAt(ctx, l.drv, l.path)
			if err != nil || cur.ID != mine.ID {
				return ignoreNotFound(err)
			}
			return ignoreNotFound(l.drv.Delete(ctx, l.path))
		})
		if !errors.Is(err, errBusy) {
			if err != nil {
				return fmt.Errorf("releasing the %s: %w", l.what, err)
			}
			return nil
		}
		if err := clock.Sleep(ctx, l.clk, 20*time.Millisecond); err != nil {
			return fmt.Errorf("releasing the %s: %w", l.what, err)
		}
	}
}

// takeoverLock is the content of a takeover lock.
type takeoverLock struct {
	Holder  string    `json:"holder"`
	Created time.Time `json:"created"`
	// Token tells our own lock from another's when a create's answer
	// was lost and its retry found the lock we had just made.
	Token string `json:"token,omitempty"`
}

// withTakeoverLock runs fn holding the lock of lease id: an exclusively
// created file that every change to that lease (renewal, release,
// takeover) is made under, each re-reading the lease first. Creating a
// lease needs no lock: CreateExclusive lets only one through. It returns
// errBusy when another process holds the lock. A lock older than
// takeoverStale was left by a crash and is broken.
func withTakeoverLock(ctx context.Context, clk clock.Clock, drv storage.Driver, ec storage.ExclusiveCreator, leaseID, holder string, fn func() error) error {
	p := takeoverDir + "/" + leaseID + ".json"
	token := newID()
	b, err := json.Marshal(takeoverLock{Holder: holder, Created: clk.Now().UTC(), Token: token})
	if err != nil {
		return err
	}
	err = ec.CreateExclusive(ctx, p, b)
	if errors.Is(err, storage.ErrExists) {
		switch {
		case ownLock(ctx, drv, p, token):
			err = nil // our create went through; only its answer was lost
		case breakStaleLock(ctx, clk, drv, p):
			err = ec.CreateExclusive(ctx, p, b)
		}
	}
	if errors.Is(err, storage.ErrExists) {
		return errBusy
	}
	if err != nil {
		return err
	}
	defer func() {
		// Even when ctx was cancelled: a lock left behind blocks
		// this lease's release and takeover for takeoverStale.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		drv.Delete(dctx, p)
	}()
	return fn()
}

// ownLock reports whether the lock at p is the one with token.
func ownLock(ctx context.Context, drv storage.Driver, p, token string) bool {
	var lk takeoverLock
	b, err := drv.GetContent(ctx, p)
	return err == nil && json.Unmarshal(b, &lk) == nil && lk.Token == token
}

// breakStaleLock deletes a takeover lock older than takeoverStale and
// reports whether it did.
func breakStaleLock(ctx context.Context, clk clock.Clock, drv storage.Driver, p string) bool {
	var lk takeoverLock
	b, err := drv.GetContent(ctx, p)
	if err != nil {
		return false
	}
	json.Unmarshal(b, &lk) // unreadable: judged by its modification time
	created := lk.Created
	if created.IsZero() {
		fi, err := drv.Stat(ctx, p)
		if err != nil {
			return false
		}
		created = fi.ModTime
	}
	if clk.Since(created) < takeoverStale {
		return false
	}
	return ignoreNotFound(drv.Delete(ctx, p)) == nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
