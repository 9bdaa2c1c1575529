package distconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRedis(t *testing.T) {
	yaml := minimal + `redis:
  addrs: [10.0.0.1:6379, 10.0.0.2:6379]
  db: 2
  username: reg
  password: s3cret
  dialtimeout: 250ms
  readtimeout: 1s
  writetimeout: 2s
  poolsize: 32
  minidleconns: 2
  maxidleconns: 8
  connmaxidletime: 5m
  mastername: primary
  tls:
    certificate: /etc/regctl/redis.crt
    key: /etc/regctl/redis.key
    rootcas: [/etc/regctl/ca.pem]
`
	c, err := parse("config.yml", []byte(yaml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Redis{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379"}, DB: 2, Username: "reg", Password: "s3cret",
		DialTimeout: 250 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: 32, MinIdleConns: 2, MaxIdleConns: 8, ConnMaxIdleTime: 5 * time.Minute, MasterName: "primary",
		TLS: RedisTLS{Certificate: "/etc/regctl/redis.crt", Key: "/etc/regctl/redis.key", RootCAs: []string{"/etc/regctl/ca.pem"}},
	}
	if c.Redis == nil || !reflect.DeepEqual(*c.Redis, want) {
		t.Fatalf("redis =\n %+v\nwant\n %+v", c.Redis, want)
	}
	if !c.Redis.TLS.Enabled() {
		t.Error("TLS not enabled")
	}
	if s := c.Redis.String(); strings.Contains(s, "s3cret") {
		t.Errorf("String shows the password: %s", s)
	}
}

func TestParseRedisErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"db type", "redis:\n  addrs: [h:1]\n  db: one\n", "config.yml:9: redis.db: must be a whole number"},
		{"timeout", "redis:\n  dialtimeout: soon\n", `config.yml:8: redis.dialtimeout: must be a duration such as 10s or 500ms, not "soon"`},
		{"negative pool", "redis:\n  poolsize: -1\n", "config.yml:8: redis.poolsize: must not be negative"},
		{"protocol", "redis:\n  protocol: 4\n", "redis.protocol: must be 2 or 3, not 4"},
		{"unknown tls key", "redis:\n  tls:\n    insecure: true\n", "config.yml:9: redis.tls.insecure: is not a redis TLS option regctl knows"},
		{"old clientcas", "redis:\n  tls:\n    clientcas: [/ca]\n", "redis.tls.clientcas: is not a redis TLS option regctl knows (certificate, key, rootcas): refusing to connect with TLS settings it would ignore"},
		{"half a pair", "redis:\n  tls:\n    certificate: /c\n", "redis.tls: certificate and key go together"},
		{"tls scalar", "redis:\n  tls: true\n", "redis.tls: must be a map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse("config.yml", []byte(minimal+tc.yaml), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseCluster(t *testing.T) {
	c, err := parse("config.yml", []byte(minimal+"regctl:\n  cluster:\n    enabled: false\n    heartbeat: 500ms\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Disabled || c.Cluster.Heartbeat != 500*time.Millisecond {
		t.Errorf("cluster = %+v", c.Cluster)
	}
	c, err = parse("config.yml", []byte(minimal), nil, nil)
	if err != nil || c.Cluster.Disabled || c.Cluster.Heartbeat != 0 {
		t.Errorf("no section: %+v, %v", c.Cluster, err)
	}
	_, err = parse("config.yml", []byte(minimal+"regctl:\n  cluster:\n    heartbeat: often\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "config.yml:9: regctl.cluster.heartbeat: must be a duration") {
		t.Errorf("bad heartbeat: %v", err)
	}
}
