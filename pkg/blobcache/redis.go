package blobcache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"regctl/pkg/distconfig"
)

// Redis is the shared cache in a Redis server (or cluster, or sentinel
// set: go-redis' universal client, as Distribution uses).
type Redis struct {
	c redis.UniversalClient
}

// setUnlessTombstoned sets KEYS[1] to ARGV[1] for ARGV[2] seconds unless
// the tombstone KEYS[2] exists, atomically.
var setUnlessTombstoned = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`)

// Options turns Distribution's redis section into go-redis options. It
// reads the TLS files, and fails naming the key when one is unusable.
func Options(cfg *distconfig.Redis) (*redis.UniversalOptions, error) {
	if cfg == nil || len(cfg.Addrs) == 0 {
		return nil, errors.New("redis.addrs: storage.cache.blobdescriptor is redis, but the redis section names no address")
	}
	o := &redis.UniversalOptions{
		Addrs: cfg.Addrs, ClientName: cfg.ClientName, DB: cfg.DB, Protocol: cfg.Protocol,
		Username: cfg.Username, Password: cfg.Password,
		SentinelUsername: cfg.SentinelUsername, SentinelPassword: cfg.SentinelPassword, MasterName: cfg.MasterName,
		MaxRetries: cfg.MaxRetries, MinRetryBackoff: cfg.MinRetryBackoff, MaxRetryBackoff: cfg.MaxRetryBackoff,
		DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		ContextTimeoutEnabled: cfg.ContextTimeoutEnabled,
		PoolFIFO:              cfg.PoolFIFO, PoolSize: cfg.PoolSize, PoolTimeout: cfg.PoolTimeout,
		MinIdleConns: cfg.MinIdleConns, MaxIdleConns: cfg.MaxIdleConns, MaxActiveConns: cfg.MaxActiveConns,
		ConnMaxIdleTime: cfg.ConnMaxIdleTime, ConnMaxLifetime: cfg.ConnMaxLifetime,
		MaxRedirects: cfg.MaxRedirects, ReadOnly: cfg.ReadOnly,
		RouteByLatency: cfg.RouteByLatency, RouteRandomly: cfg.RouteRandomly,
		DisableIdentity: cfg.DisableIdentity, IdentitySuffix: cfg.IdentitySuffix, UnstableResp3: cfg.UnstableResp3,
	}
	// A cache that does not answer quickly is worse than none: unless
	// the config says otherwise, give up after a second and retry once
	// (go-redis would wait 5 s to connect and retry 3 times).
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout} {
		if *d == 0 {
			*d = time.Second
		}
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	if o.Protocol == 0 {
		// RESP2, as Redis 6 and 7 both speak it, without the HELLO
		// round trip and its log line on servers that refuse RESP3.
		o.Protocol = 2
	}
	if t := cfg.TLS; t.Enabled() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.Certificate != "" {
			pair, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
			if err != nil {
				return nil, fmt.Errorf("redis.tls.certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		if len(t.RootCAs) > 0 {
			pool := x509.NewCertPool()
			for i, ca := range t.RootCAs {
				b, err := os.ReadFile(ca)
				if err != nil {
					return nil, fmt.Errorf("redis.tls.rootcas[%d]: %w", i, err)
				}
				if !pool.AppendCertsFromPEM(b) {
					return nil, fmt.Errorf("redis.tls.rootcas[%d]: %s holds no PEM certificate", i, ca)
				}
			}
			tc.RootCAs = pool
		}
		o.TLSConfig = tc
	}
	return o, nil
}

// NewRedis connects to the Redis of cfg. It does not wait for the server:
// a cache that is down is only slower (see Guarded).
func NewRedis(cfg *distconfig.Redis) (*Redis, error) {
	o, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	return &Redis{c: redis.NewUniversalClient(o)}, nil
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

func (r *Redis) Get(ctx context.Context, k Key) (Descriptor, bool, error) {
	s, err := r.c.Get(ctx, k.String()).Result()
	if errors.Is(err, redis.Nil) {
		return Descriptor{}, false, nil
	}
	if err != nil {
		return Descriptor{}, false, err
	}
	d, err := decode(s)
	if err != nil {
		return Descriptor{}, false, fmt.Errorf("%s: %w", k, err)
	}
	return d, true, nil
}

func (r *Redis) Set(ctx context.Context, k Key, d Descriptor) error {
	key := k.String()
	return r.set(ctx, key, encode(d))
}

func (r *Redis) set(ctx context.Context, key, val string) error {
	return setUnlessTombstoned.Run(ctx, r.c, []string{key, tombstone(key)}, val, int(EntryTTL.Seconds())).Err()
}

func (r *Redis) Clear(ctx context.Context, ks ...Key) error {
	if len(ks) == 0 {
		return nil
	}
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range ks {
			key := k.String()
			p.Set(ctx, tombstone(key), "1", TombstoneTTL)
			p.Del(ctx, key)
		}
		return nil
	})
	return err
}

func (r *Redis) Content(ctx context.Context, d digest.Digest) ([]byte, bool, error) {
	b, err := r.c.Get(ctx, contentKey(d)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	// Content-addressed: bytes that do not match are not served.
	if d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
		return nil, false, fmt.Errorf("%s: cached bytes do not match the digest", contentKey(d))
	}
	return b, true, nil
}

func (r *Redis) SetContent(ctx context.Context, d digest.Digest, body []byte) error {
	if len(body) > MaxContent {
		return nil
	}
	return r.set(ctx, contentKey(d), string(body))
}

// Flush deletes every key under Namespace, tombstones included, with
// SCAN and UNLINK (never KEYS or FLUSHDB: other programs' keys in the
// same database stay). On a cluster every master is scanned.
func (r *Redis) Flush(ctx context.Context) (int, error) {
	n := 0
	flush := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, Namespace+"*", 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				// One key per UNLINK, pipelined: keys of one batch may
				// live in different slots of a cluster.
				_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Unlink(ctx, k)
					}
					return nil
				})
				if err != nil {
					return err
				}
				n += len(keys)
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return flush(ctx, c) })
	} else {
		err = flush(ctx, r.c)
	}
	if err != nil {
		return n, fmt.Errorf("flushing the %s* keys of the blob descriptor cache: %w", strings.TrimSuffix(Namespace, ":"), err)
	}
	return n, nil
}

func (r *Redis) Close() error { return r.c.Close() }
