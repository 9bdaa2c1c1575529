package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"regctl/internal/clock"
	"regctl/pkg/storage"
)

// ManualCommand is the command name in the holder of a lease an admin
// took by hand (regctl registry-readonly enable --cluster).
const ManualCommand = "registry-readonly"

// DefaultManualTTL is how long a lease taken by hand lasts: nothing
// renews it once the command has returned, so it must be long, and it
// must end, so that a forgotten one does not keep the registry
// read-only for ever.
const DefaultManualTTL = 24 * time.Hour

// IsManual reports whether an admin took the lease by hand.
func (l LeaseInfo) IsManual() bool { return strings.HasSuffix(l.Holder, "/"+ManualCommand) }

// Keep stops renewing the lease and leaves it in the storage: it lasts
// until it expires (Info().Expires) or someone releases it
// (ReleaseManual). Release afterwards does nothing.
func (l *Lease) Keep() {
	l.mu.Lock()
	already := l.released
	l.released = true
	l.mu.Unlock()
	if already {
		return
	}
	close(l.stop)
	<-l.renewing
}

// ErrNotManual is wrapped by ReleaseManual's error for a job's lease.
var ErrNotManual = errors.New("the maintenance lease belongs to a running job")

// ReleaseManual deletes the lease an admin took by hand, from any
// process, and returns it (nil when there was none, or it had expired).
// A job's lease (garbage collection, a cutover) is refused unless force
// is set: the nodes would take writes while the job may still delete.
func ReleaseManual(ctx context.Context, drv storage.Driver, force bool) (*LeaseInfo, error) {
	ec, ok := storage.As[storage.ExclusiveCreator](drv)
	if !ok {
		return nil, fmt.Errorf("maintenance lease: the %s driver cannot create files exclusively", drv.Name())
	}
	clk := clockOf(ctx)
	deadline := clk.Now().Add(contendedWait)
	for {
		cur, _, err := readLease(ctx, drv)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("maintenance lease: %w", err)
		}
		if !cur.IsManual() && !cur.Expired(clk.Now()) && !force {
			return &cur, fmt.Errorf("%w: %s; it is released when the job ends (or expires by %s if the job died); --force releases it anyway, letting the nodes write while the job may still delete",
				ErrNotManual, cur, cur.Expires.Local().Format(time.RFC3339))
		}
		err = withTakeoverLock(ctx, clk, drv, ec, cur.ID, Holder(ManualCommand), func() error {
			again, _, err := readLease(ctx, drv)
			if err != nil || again.ID != cur.ID {
				return ignoreNotFound(err)
			}
			return ignoreNotFound(drv.Delete(ctx, LeasePath))
		})
		if errors.Is(err, errBusy) && clk.Now().Before(deadline) {
			if err := clock.Sleep(ctx, clk, 20*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("releasing the maintenance lease: %w", err)
		}
		if cur.Expired(clk.Now()) {
			return nil, nil
		}
		return &cur, nil
	}
}
