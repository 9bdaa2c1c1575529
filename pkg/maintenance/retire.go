package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/storage"
)

// RetiredTTL is how long Retire keeps a lease: for good, in practice.
const RetiredTTL = 100 * 365 * 24 * time.Hour

// Retire turns a held lease into a lasting one, for a storage that has
// been replaced (migrate-storage's cutover moved its data to S3): every
// regctl daemon still serving it keeps refusing writes, which would
// otherwise land where nobody reads them any more, until it is restarted
// on the new storage. The lease keeps its id, so daemons that already
// acknowledged it never leave read-only in between. Renewal stops, and
// Release after Retire does nothing; when Retire fails the lease is
// renewed again as before, so the caller can still Release it. Deleting
// lease.json by hand lifts a retired lease.
func (l *Lease) Retire(ctx context.Context, reason string) error {
	l.mu.Lock()
	already := l.released
	l.released = true
	l.mu.Unlock()
	if already {
		return errors.New("retiring the maintenance lease: it was released already")
	}
	close(l.stop)
	<-l.renewing
	mine := l.Info()
	for {
		err := withTakeoverLock(ctx, l.clk, l.drv, l.ec, mine.ID, mine.Holder, func() error {
			cur, _, err := readLease(ctx, l.drv)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return &notOursError{"it was deleted"}
			case err != nil:
				return err
			case cur.ID != mine.ID:
				return &notOursError{fmt.Sprintf("it was taken over by %s (%s)", cur.Holder, cur.Reason)}
			case cur.Expired(l.clk.Now()):
				return &notOursError{"it expired"}
			}
			next := cur
			next.Reason = reason
			next.Expires = l.clk.Now().Add(RetiredTTL).UTC()
			return l.store(ctx, next)
		})
		if errors.Is(err, errBusy) {
			err = clock.Sleep(ctx, l.clk, 20*time.Millisecond)
			if err == nil {
				continue
			}
		}
		if err != nil {
			var gone *notOursError
			if errors.As(err, &gone) {
				l.markLost(err)
			} else {
				l.resumeRenewal()
			}
			return fmt.Errorf("retiring the maintenance lease: %w", err)
		}
		l.mu.Lock()
		l.isRetired = true
		l.mu.Unlock()
		return nil
	}
}

// retired reports whether Retire succeeded.
func (l *Lease) retired() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.isRetired
}

// resumeRenewal restarts the renewal Retire stopped, after it failed.
func (l *Lease) resumeRenewal() {
	l.mu.Lock()
	l.released = false
	l.stop = make(chan struct{})
	l.renewing = make(chan struct{})
	l.mu.Unlock()
	go l.renewLoop()
}
