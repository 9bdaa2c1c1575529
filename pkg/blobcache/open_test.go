package blobcache

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
)

func TestOpen(t *testing.T) {
	cfg := distconfig.Default(t.TempDir())
	c, err := Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil || c != nil {
		t.Fatalf("inmemory: %v, %v; want no cache", c, err)
	}
	cfg.Storage.Cache.BlobDescriptor = "redis"
	if _, err := Open(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "redis.addrs") {
		t.Fatalf("redis without a section: %v", err)
	}
}

func TestFlushAfter(t *testing.T) {
	t.Parallel()
	rs := testtools.StartRedis(t)
	cfg := distconfig.Default(t.TempDir())
	cfg.Storage.Cache.BlobDescriptor = "redis"
	cfg.Redis = &distconfig.Redis{Addrs: []string{rs.Addr}}
	c, err := Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k := GlobalKey(digest.FromString("gone"))
	c.Set(ctx, k, Descriptor{Size: 1})

	boom := errors.New("gc failed half-way")
	n, err := FlushAfter(ctx, c, func(context.Context) error { return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("FlushAfter = %d, %v; want 1 key and the job's error", n, err)
	}
	if _, ok, _ := c.Get(ctx, k); ok {
		t.Fatal("entry survived the flush")
	}

	rs.Process.Stop()
	ran := false
	_, err = FlushAfter(ctx, c, func(context.Context) error { ran = true; return nil })
	if ran || err == nil || !strings.Contains(err.Error(), "nothing was done") {
		t.Fatalf("Redis down: ran=%v err=%v; want the job not run", ran, err)
	}
}
