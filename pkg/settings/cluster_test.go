package settings

import (
	"strings"
	"testing"
)

func TestClusterAndRedisValidation(t *testing.T) {
	// Shape first: unknown keys and wrong types, every one at once.
	shape := `[registry.cluster]
enable = true

[registry.redis]
dialtimeout = "soon"
pool_size = 3

[registry.redis.tls]
insecure = true
`
	checkProblems(t, problemsOf(t, shape), []wantProblem{
		{2, "registry.cluster.enable", `unknown key (did you mean "enabled"?)`},
		{5, "registry.redis.dialtimeout", `"soon" is not a duration`},
		{6, "registry.redis.pool_size", `did you mean "poolsize"?`},
		{9, "registry.redis.tls.insecure", "unknown key (known keys here: certificate, key, rootcas)"},
	})

	// Then the values.
	values := `[registry.cluster]
heartbeat = "10ms"

[registry.storage.cache]
blobdescriptor = "redis"

[registry.redis]
addrs = ["redis.internal"]
db = -1
protocol = 4

[registry.redis.tls]
certificate = "/etc/regctl/redis.crt"
`
	checkProblems(t, problemsOf(t, values), []wantProblem{
		{2, "registry.cluster.heartbeat", `"10ms" is too short: use at least 100ms`},
		{8, "registry.redis.addrs", `addrs[0] "redis.internal" must be host:port`},
		{9, "registry.redis.db", "must not be negative"},
		{10, "registry.redis.protocol", "must be 2 or 3, not 4"},
		{12, "registry.redis.tls", "certificate and key go together"},
	})

	var ps []*Problem
	ps = problemsOf(t, "[registry.storage.cache]\nblobdescriptor = \"redis\"\n")
	checkProblems(t, ps, []wantProblem{{2, "registry.storage.cache.blobdescriptor", "[registry.redis] sets no addrs"}})
	ps = problemsOf(t, "[registry.storage.cache]\nblobdescriptor = \"memcache\"\n")
	checkProblems(t, ps, []wantProblem{{2, "registry.storage.cache.blobdescriptor", `use "inmemory" or "redis"`}})
}

func checkProblems(t *testing.T, got []*Problem, want []wantProblem) {
	t.Helper()
	var lines []string
	for _, p := range got {
		lines = append(lines, p.Error())
	}
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(got), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		p := got[i]
		if p.Line != w.line || p.Key != w.key || !strings.Contains(p.Error(), w.msg) {
			t.Errorf("problem %d = %s (line %d, key %s); want line %d key %s containing %q", i, p.Error(), p.Line, p.Key, w.line, w.key, w.msg)
		}
	}
}
