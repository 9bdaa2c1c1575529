package distconfig

import (
	"fmt"
	"time"
)

// Redis is Distribution v3's redis section: go-redis UniversalOptions
// under Distribution's lower-case names, plus tls. Every key
// Distribution v3.1.2 knows is typed here, so none is silently dropped.
type Redis struct {
	Addrs            []string
	ClientName       string
	DB               int
	Protocol         int
	Username         string
	Password         string
	SentinelUsername string
	SentinelPassword string
	MasterName       string

	MaxRetries            int
	MinRetryBackoff       time.Duration
	MaxRetryBackoff       time.Duration
	DialTimeout           time.Duration
	ReadTimeout           time.Duration
	WriteTimeout          time.Duration
	ContextTimeoutEnabled bool

	PoolFIFO        bool
	PoolSize        int
	PoolTimeout     time.Duration
	MinIdleConns    int
	MaxIdleConns    int
	MaxActiveConns  int
	ConnMaxIdleTime time.Duration
	ConnMaxLifetime time.Duration

	MaxRedirects    int
	ReadOnly        bool
	RouteByLatency  bool
	RouteRandomly   bool
	DisableIdentity bool
	IdentitySuffix  string
	UnstableResp3   bool

	TLS RedisTLS
}

// RedisTLS is redis.tls. Any key set turns TLS on, as in Distribution.
type RedisTLS struct {
	Certificate string
	Key         string
	RootCAs     []string
}

// Enabled reports whether the connection uses TLS.
func (t RedisTLS) Enabled() bool {
	return t.Certificate != "" || t.Key != "" || len(t.RootCAs) > 0
}

// String hides the passwords (the section is compared and logged).
func (r *Redis) String() string {
	if r == nil {
		return "<nil>"
	}
	c := *r
	if c.Password != "" {
		c.Password = "***"
	}
	if c.SentinelPassword != "" {
		c.SentinelPassword = "***"
	}
	type plain Redis
	return fmt.Sprintf("%+v", plain(c))
}

// redis decodes the redis section. Unknown keys are warned about, as
// elsewhere, except under tls: a TLS option regctl does not know asks for
// protection it would not give, so it stops the config.
func (d *decoder) redis(n *node, path string) *Redis {
	if n.kind == kindNull {
		return nil
	}
	r := &Redis{}
	d.mapping(n, path, fields{
		"addrs":                 d.stringList(&r.Addrs),
		"clientname":            d.str(&r.ClientName),
		"db":                    d.count(&r.DB),
		"protocol":              d.count(&r.Protocol),
		"username":              d.str(&r.Username),
		"password":              d.str(&r.Password),
		"sentinelusername":      d.str(&r.SentinelUsername),
		"sentinelpassword":      d.str(&r.SentinelPassword),
		"mastername":            d.str(&r.MasterName),
		"maxretries":            d.count(&r.MaxRetries),
		"minretrybackoff":       d.duration(&r.MinRetryBackoff),
		"maxretrybackoff":       d.duration(&r.MaxRetryBackoff),
		"dialtimeout":           d.duration(&r.DialTimeout),
		"readtimeout":           d.duration(&r.ReadTimeout),
		"writetimeout":          d.duration(&r.WriteTimeout),
		"contexttimeoutenabled": d.boolean(&r.ContextTimeoutEnabled),
		"poolfifo":              d.boolean(&r.PoolFIFO),
		"poolsize":              d.count(&r.PoolSize),
		"pooltimeout":           d.duration(&r.PoolTimeout),
		"minidleconns":          d.count(&r.MinIdleConns),
		"maxidleconns":          d.count(&r.MaxIdleConns),
		"maxactiveconns":        d.count(&r.MaxActiveConns),
		"connmaxidletime":       d.duration(&r.ConnMaxIdleTime),
		"connmaxlifetime":       d.duration(&r.ConnMaxLifetime),
		"maxredirects":          d.count(&r.MaxRedirects),
		"readonly":              d.boolean(&r.ReadOnly),
		"routebylatency":        d.boolean(&r.RouteByLatency),
		"routerandomly":         d.boolean(&r.RouteRandomly),
		"disableidentity":       d.boolean(&r.DisableIdentity),
		"identitysuffix":        d.str(&r.IdentitySuffix),
		"unstableresp3":         d.boolean(&r.UnstableResp3),
		"tls":                   func(n *node, path string) { d.redisTLS(n, path, &r.TLS) },
	})
	if d.err != nil {
		return nil
	}
	if r.Protocol != 0 && r.Protocol != 2 && r.Protocol != 3 {
		d.fail(n, join(path, "protocol"), "must be 2 or 3, not %d", r.Protocol)
	}
	return r
}

func (d *decoder) redisTLS(n *node, path string, t *RedisTLS) {
	if n.kind != kindMap && n.kind != kindNull {
		d.fail(n, path, "must be a map (certificate, key, rootcas), not %s", n.describe())
		return
	}
	known := fields{
		"certificate": d.str(&t.Certificate),
		"key":         d.str(&t.Key),
		"rootcas":     d.stringList(&t.RootCAs),
	}
	for _, e := range n.entries {
		if _, ok := known[e.key]; ok {
			continue
		}
		msg := "is not a redis TLS option regctl knows (certificate, key, rootcas): refusing to connect with TLS settings it would ignore"
		if s := suggest(e.key, keysOf(known)); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		d.fail(e.val, join(path, e.key), "%s", msg)
		return
	}
	d.mapping(n, path, known)
	if d.err == nil && (t.Certificate == "") != (t.Key == "") {
		d.fail(n, path, "certificate and key go together: set both for a client certificate, or neither")
	}
}
