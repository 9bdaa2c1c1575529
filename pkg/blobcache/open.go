package blobcache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"regctl/pkg/distconfig"
)

// Open opens the shared blob descriptor cache a config names
// (storage.cache.blobdescriptor: redis), or returns nil: with inmemory
// or no cache, regctl serve answers every existence question from the
// storage, so no node can be stale (a per-node memory would be, as soon
// as another node or garbage collection deletes). An unreachable Redis
// is only logged: the daemon serves from the storage until it answers.
func Open(cfg *distconfig.Config, log *slog.Logger) (Cache, error) {
	if cfg.Storage.Cache.BlobDescriptor != "redis" {
		return nil, nil
	}
	r, err := NewRedis(cfg.Redis)
	if err != nil {
		return nil, err
	}
	g := &Guarded{C: r, Log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		log.Warn("redis for the blob descriptor cache does not answer yet: serving from the storage until it does", "addrs", cfg.Redis.Addrs, "err", err)
	} else {
		log.Info("using the redis blob descriptor cache", "addrs", cfg.Redis.Addrs, "db", cfg.Redis.DB)
	}
	return g, nil
}

// FlushAfter runs a job that deletes from the storage (garbage
// collection) and then flushes the shared cache, so that no node answers
// "exists" for what the job deleted. With no cache it just runs job.
// When the cache does not answer before the job, nothing runs: its
// deletions could not be invalidated afterwards. Call it while every
// daemon is in maintenance (they do not fill the cache then).
func FlushAfter(ctx context.Context, c Cache, job func(context.Context) error) (flushed int, err error) {
	if c == nil {
		return 0, job(ctx)
	}
	if err := c.Ping(ctx); err != nil {
		return 0, fmt.Errorf("the shared blob descriptor cache (redis) does not answer, so what this job deletes could not be invalidated; nothing was done: %w", err)
	}
	jobErr := job(ctx)
	// Also after a failure: some things may have been deleted. A fresh
	// context, since ctx may have been cancelled (Ctrl-C).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n, ferr := c.Flush(fctx)
	if ferr != nil {
		ferr = fmt.Errorf("%w; nodes may answer \"exists\" for deleted blobs until the %s* keys are deleted (redis-cli --scan --pattern '%s*' | xargs redis-cli unlink)", ferr, Namespace, Namespace)
	}
	if jobErr != nil && ferr != nil {
		return n, fmt.Errorf("%w; and %w", jobErr, ferr)
	}
	if jobErr != nil {
		return n, jobErr
	}
	return n, ferr
}
