package testtools

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartRedis(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	// No persistence: the server runs with --save '' --appendonly no.
	cfg, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["save"] != "" {
		t.Errorf("save = %q, want empty", cfg["save"])
	}
	cfg, err = c.ConfigGet(ctx, "appendonly").Result()
	if err != nil || cfg["appendonly"] != "no" {
		t.Errorf("appendonly = %q, %v", cfg["appendonly"], err)
	}
	dir, err := c.ConfigGet(ctx, "dir").Result()
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); dir["dir"] == wd {
		t.Errorf("redis-server runs in the package folder %s", wd)
	}
	r.Process.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("PING answered after Stop")
	}
}
