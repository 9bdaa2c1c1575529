package maintenance

import (
	"context"

	"regctl/internal/clock"
)

type clockKey struct{}

// WithClock returns a context under which this package tells time by c:
// lease expiry and renewal, heartbeat times, polling and waiting, in
// every call made with it and in the goroutines those calls start (a
// lease's renewal, an agent's watchdog). Without it the real clock
// runs. Tests pass a clock.Fake, so that they advance through lease
// lifetimes instead of sleeping through them.
//
// The clock rides on the context because every entry point of the
// package takes one already and has to hand it down several calls and
// into goroutines; no signature changes for it. Deadlines of storage
// calls (context.WithTimeout) stay on the real clock: they bound I/O.
func WithClock(ctx context.Context, c clock.Clock) context.Context {
	return context.WithValue(ctx, clockKey{}, c)
}

// clockOf is the clock of ctx: WithClock's, or the real one.
func clockOf(ctx context.Context) clock.Clock {
	if c, ok := ctx.Value(clockKey{}).(clock.Clock); ok && c != nil {
		return c
	}
	return clock.Real
}
