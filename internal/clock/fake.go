package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a Clock that stands still until Advance moves it. Its timers
// and tickers fire during Advance, in the order of their deadlines, each
// seeing Now at its own deadline; like the real ones, a ticker whose
// last tick was not received yet drops the next.
//
// Advance does not wait for the goroutines its timers wake to react:
// a test that must know a goroutine is waiting again calls WaitTimers,
// or waits for what the goroutine does.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever armed changes
}

// NewFake is a Fake clock showing start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, armed: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

func (f *Fake) After(d time.Duration) <-chan time.Time { return f.NewTimer(d).C() }

func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return t
}

func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), period: d}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return fakeTicker{t}
}

// Advance moves the clock forward by d, firing every timer due by then.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := f.now.Add(d)
	for {
		var next *fakeTimer
		for t := range f.armed {
			if !t.deadline.After(target) && (next == nil || t.deadline.Before(next.deadline)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.deadline.After(f.now) {
			f.now = next.deadline
		}
		select {
		case next.c <- f.now:
		default: // a tick nobody received yet: dropped, as real tickers do
		}
		if next.period > 0 {
			next.deadline = next.deadline.Add(next.period)
		} else {
			f.disarm(next)
		}
	}
	f.now = target
}

// Timers counts the timers and tickers that are armed.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.armed)
}

// WaitTimers waits until at least n timers or tickers are armed: the
// goroutines the test drives are waiting on the clock. It gives up with
// ctx's error.
func (f *Fake) WaitTimers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		armed, changed := len(f.armed), f.changed
		f.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// arm and disarm are called with f.mu held.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	t.deadline = f.now.Add(d)
	f.armed[t] = struct{}{}
	f.notify()
}

func (f *Fake) disarm(t *fakeTimer) bool {
	if _, ok := f.armed[t]; !ok {
		return false
	}
	delete(f.armed, t)
	f.notify()
	return true
}

func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

type fakeTimer struct {
	f        *Fake
	c        chan time.Time
	deadline time.Time
	period   time.Duration // tickers
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop disarms the timer; like a real timer's since Go 1.23, no stale
// value is received after it.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	return t.f.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	was := t.f.disarm(t)
	t.f.arm(t, d)
	return was
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

type fakeTicker struct{ t *fakeTimer }

func (t fakeTicker) C() <-chan time.Time { return t.t.c }
func (t fakeTicker) Stop()               { t.t.Stop() }
