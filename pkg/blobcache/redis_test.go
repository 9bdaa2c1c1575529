package blobcache

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/distconfig"
)

func newRedis(t *testing.T) (*Redis, *testtools.Redis) {
	t.Helper()
	srv := testtools.StartRedis(t)
	r, err := NewRedis(&distconfig.Redis{Addrs: []string{srv.Addr}, DialTimeout: time.Second, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, srv
}

func TestRedisDescriptors(t *testing.T) {
	t.Parallel()
	r, _ := newRedis(t)
	ctx := t.Context()
	d := digest.FromString("layer")
	k := LayerKey("group/app", d)
	if _, ok, err := r.Get(ctx, k); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	want := Descriptor{Size: 42, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
	if err := r.Set(ctx, k, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Get(ctx, k)
	if err != nil || !ok || got != want {
		t.Fatalf("Get = %+v %v %v", got, ok, err)
	}
	// Scopes are apart: the layer entry says nothing of another
	// repository, nor of the global store, nor of a manifest.
	for _, other := range []Key{LayerKey("group/other", d), GlobalKey(d), ManifestKey("group/app", d)} {
		if _, ok, _ := r.Get(ctx, other); ok {
			t.Errorf("%s hit after setting %s", other, k)
		}
	}
	ttl, err := r.c.TTL(ctx, k.String()).Result()
	if err != nil || ttl <= 0 || ttl > EntryTTL {
		t.Errorf("TTL = %v, %v; want (0, %v]", ttl, err, EntryTTL)
	}

	// Clear removes it and keeps a later Set (a read that saw the
	// storage before the delete) from putting it back.
	if err := r.Clear(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Get(ctx, k); ok {
		t.Fatal("hit after Clear")
	}
	if err := r.Set(ctx, k, want); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Get(ctx, k); ok {
		t.Fatal("Set during the tombstone put the entry back")
	}
	// Once the tombstone has gone, Set works again (a re-push).
	r.c.Del(ctx, tombstone(k.String()))
	if err := r.Set(ctx, k, want); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Get(ctx, k); !ok {
		t.Fatal("Set after the tombstone expired did not store")
	}

	// A malformed value is an error, not a hit.
	r.c.Set(ctx, GlobalKey(d).String(), "garbage", 0)
	if _, ok, err := r.Get(ctx, GlobalKey(d)); ok || err == nil {
		t.Errorf("malformed entry: ok=%v err=%v", ok, err)
	}
}

func TestRedisContent(t *testing.T) {
	t.Parallel()
	r, _ := newRedis(t)
	ctx := t.Context()
	body := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(body)
	if err := r.SetContent(ctx, d, body); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Content(ctx, d)
	if err != nil || !ok || !bytes.Equal(got, body) {
		t.Fatalf("Content = %q %v %v", got, ok, err)
	}
	// Bytes that do not match their digest are refused.
	other := digest.FromString("other")
	r.c.Set(ctx, contentKey(other), body, 0)
	if _, ok, err := r.Content(ctx, other); ok || err == nil {
		t.Errorf("mismatched content: ok=%v err=%v", ok, err)
	}
	big := bytes.Repeat([]byte("x"), MaxContent+1)
	if err := r.SetContent(ctx, digest.FromBytes(big), big); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Content(ctx, digest.FromBytes(big)); ok {
		t.Error("content above MaxContent was kept")
	}
}

func TestRedisFlushKeepsOtherKeys(t *testing.T) {
	t.Parallel()
	r, _ := newRedis(t)
	ctx := t.Context()
	const n = 2500 // more than one SCAN batch
	for i := range n {
		if err := r.Set(ctx, GlobalKey(digest.FromString(strings.Repeat("a", i))), Descriptor{Size: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r.Clear(ctx, LayerKey("r", digest.FromString("x"))) // a tombstone
	r.c.Set(ctx, "someone-else:key", "v", 0)
	got, err := r.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != n+1 {
		t.Errorf("Flush removed %d keys, want %d", got, n+1)
	}
	left, err := r.c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "someone-else:key" {
		t.Errorf("keys left: %q", left)
	}
}

func TestGuardedRedisDown(t *testing.T) {
	t.Parallel()
	r, srv := newRedis(t)
	var logs bytes.Buffer
	g := &Guarded{C: r, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx := t.Context()
	k := GlobalKey(digest.FromString("b"))
	g.Set(ctx, k, Descriptor{Size: 1})
	if _, ok, _ := g.Get(ctx, k); !ok {
		t.Fatal("miss with Redis up")
	}
	srv.Process.Stop()
	start := time.Now()
	for range 3 {
		_, ok, err := g.Get(ctx, k)
		if ok || err != nil {
			t.Fatalf("Redis down: Get = %v, %v; want a plain miss", ok, err)
		}
	}
	// The first failure opens the breaker: the others go straight to
	// the storage instead of waiting for Redis each time.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("three Gets with Redis down took %v", took)
	}
	if err := g.Set(ctx, k, Descriptor{Size: 1}); err != nil {
		t.Errorf("Set with Redis down = %v; want it dropped", err)
	}
	if err := g.Clear(ctx, k); err == nil {
		t.Error("Clear with Redis down reported success: a delete would go ahead uninvalidated")
	}
	st := g.Stats()
	if st.Hits != 1 || st.Misses != 3 || st.Errors != 2 || st.Bypassed != 3 {
		t.Errorf("stats = %+v, want 1 hit, 3 misses (2 bypassed, 1 set bypassed), 2 errors (a get, the clear)", st)
	}
	if c := strings.Count(logs.String(), "blob descriptor cache failing"); c != 1 {
		t.Errorf("logged the failure %d times, want once:\n%s", c, logs.String())
	}
	// Back up: after the pause the cache is tried again and answers.
	srv2 := testtools.StartRedis(t)
	r2, err := NewRedis(&distconfig.Redis{Addrs: []string{srv2.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	g.C = r2
	g.retryAt = time.Now()
	g.Set(ctx, k, Descriptor{Size: 1})
	if _, ok, _ := g.Get(ctx, k); !ok {
		t.Error("no hit once Redis is back")
	}
	if !strings.Contains(logs.String(), "blob descriptor cache answers again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  *distconfig.Redis
		want string
	}{
		{"no section", nil, "redis.addrs: storage.cache.blobdescriptor is redis, but the redis section names no address"},
		{"no addrs", &distconfig.Redis{DB: 1}, "redis.addrs"},
		{"missing ca", &distconfig.Redis{Addrs: []string{"h:1"}, TLS: distconfig.RedisTLS{RootCAs: []string{filepath.Join(dir, "nope.pem")}}}, "redis.tls.rootcas[0]: open"},
		{"not pem", &distconfig.Redis{Addrs: []string{"h:1"}, TLS: distconfig.RedisTLS{RootCAs: []string{notPEM}}}, "redis.tls.rootcas[0]: " + notPEM + " holds no PEM certificate"},
		{"bad pair", &distconfig.Redis{Addrs: []string{"h:1"}, TLS: distconfig.RedisTLS{Certificate: notPEM, Key: notPEM}}, "redis.tls.certificate:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	o, err := Options(&distconfig.Redis{Addrs: []string{"a:1"}, DB: 3, PoolSize: 7, DialTimeout: time.Second})
	if err != nil || o.DB != 3 || o.PoolSize != 7 || o.DialTimeout != time.Second || o.TLSConfig != nil {
		t.Errorf("Options = %+v, %v", o, err)
	}
}
