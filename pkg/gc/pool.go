package gc

import (
	"context"
	"sync"
)

// group runs tasks with at most n at once; tasks may start more tasks.
// The first error cancels the group's context and is what Wait returns.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context, n int) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, n)}
}

func (g *group) fail(err error) {
	g.once.Do(func() {
		g.err = err
		g.cancel()
	})
}

// Go runs fn once a slot is free, unless the group has failed.
func (g *group) Go(fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case g.sem <- struct{}{}:
		case <-g.ctx.Done():
			g.fail(g.ctx.Err())
			return
		}
		defer func() { <-g.sem }()
		if err := g.ctx.Err(); err != nil {
			g.fail(err)
			return
		}
		if err := fn(g.ctx); err != nil {
			g.fail(err)
		}
	}()
}

// Wait waits for every task, started ones included.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// forEach calls fn(i) for i in [0, n) on at most workers goroutines,
// stopping at the first error.
func forEach(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return ctx.Err()
	}
	workers = max(1, min(workers, n))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		next int
		err  error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := err != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if e := ctx.Err(); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return
				}
				if e := fn(ctx, i); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return err
}
