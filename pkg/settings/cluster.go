package settings

import (
	"net"
	"time"
)

// Cluster is [registry.cluster]: regctl serve nodes sharing one storage
// coordinate through heartbeats and a maintenance lease in it.
type Cluster struct {
	// Enabled: heartbeats and lease polling (default true). Off only for
	// a node whose storage credentials cannot write.
	Enabled bool `toml:"enabled"`
	// Heartbeat is how often each node reads the lease and writes its
	// heartbeat (default "2s"); read-only takes effect within it.
	Heartbeat string `toml:"heartbeat"`
}

// redisSchema is [registry.redis]: Distribution v3's redis section.
func redisSchema() *Node {
	n := table(map[string]*Node{
		"addrs": leaf(KStringList), "clientname": leaf(KString), "db": leaf(KInt), "protocol": leaf(KInt),
		"username": leaf(KString), "password": secret(leaf(KString)),
		"sentinelusername": leaf(KString), "sentinelpassword": secret(leaf(KString)), "mastername": leaf(KString),
		"maxretries": leaf(KInt), "minretrybackoff": leaf(KDuration), "maxretrybackoff": leaf(KDuration),
		"dialtimeout": leaf(KDuration), "readtimeout": leaf(KDuration), "writetimeout": leaf(KDuration),
		"contexttimeoutenabled": leaf(KBool), "poolfifo": leaf(KBool), "poolsize": leaf(KInt),
		"pooltimeout": leaf(KDuration), "minidleconns": leaf(KInt), "maxidleconns": leaf(KInt),
		"maxactiveconns": leaf(KInt), "connmaxidletime": leaf(KDuration), "connmaxlifetime": leaf(KDuration),
		"maxredirects": leaf(KInt), "readonly": leaf(KBool), "routebylatency": leaf(KBool),
		"routerandomly": leaf(KBool), "disableidentity": leaf(KBool), "identitysuffix": leaf(KString),
		"unstableresp3": leaf(KBool),
		// Paths of files, not their content.
		"tls": table(map[string]*Node{
			"certificate": leaf(KString), "key": leaf(KString), "rootcas": leaf(KStringList),
		}),
	})
	return n
}

// minHeartbeat: shorter intervals cost a storage write per node each
// time, and flake on a loaded machine.
const minHeartbeat = 100 * time.Millisecond

func validateCluster(ps *problems, r *Registry) {
	if hb, err := time.ParseDuration(r.Cluster.Heartbeat); err == nil && hb < minHeartbeat {
		at := []string{"registry", "cluster", "heartbeat"}
		ps.add(at, "%s is too short: use at least %s (the default is 2s)", shown(at, r.Cluster.Heartbeat), minHeartbeat)
	}
	cache, _ := r.Storage["cache"].(map[string]any)
	useRedis := cache != nil && cache["blobdescriptor"] == "redis"
	addrs, _ := r.Redis["addrs"].([]any)
	if useRedis && len(addrs) == 0 {
		ps.add([]string{"registry", "storage", "cache", "blobdescriptor"}, "is \"redis\" but [registry.redis] sets no addrs: add addrs = [\"host:6379\"]")
	}
	for i, a := range addrs {
		s, _ := a.(string)
		if _, _, err := net.SplitHostPort(s); err != nil {
			at := []string{"registry", "redis", "addrs"}
			ps.add(at, "addrs[%d] %s must be host:port", i, shown(at, s))
		}
	}
	for _, k := range []string{"db", "poolsize", "minidleconns", "maxidleconns", "maxactiveconns", "maxretries", "maxredirects"} {
		if n, ok := r.Redis[k].(int64); ok && n < 0 {
			ps.add([]string{"registry", "redis", k}, "must not be negative")
		}
	}
	if p, ok := r.Redis["protocol"].(int64); ok && p != 2 && p != 3 {
		at := []string{"registry", "redis", "protocol"}
		ps.add(at, "must be 2 or 3, not %s", shown(at, p))
	}
	if tls, ok := r.Redis["tls"].(map[string]any); ok {
		_, cert := tls["certificate"]
		_, key := tls["key"]
		if cert != key {
			ps.add([]string{"registry", "redis", "tls"}, "certificate and key go together: set both for a client certificate, or neither")
		}
	}
}
