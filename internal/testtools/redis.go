package testtools

import (
	"net"
	"os/exec"
	"testing"
)

// RedisTool is the binary name of Debian's redis-server (package
// redis-server, Redis 7.0 on bookworm).
const RedisTool = "redis-server"

// Redis is a running redis-server with no persistence.
type Redis struct {
	// Addr is "127.0.0.1:PORT".
	Addr    string
	Process *Process
}

// StartRedis runs `redis-server --port PORT --bind 127.0.0.1 --save ”
// --appendonly no` on a free loopback port and waits until it accepts
// connections; it is stopped when the test ends. Nothing is written to
// disk: the folder it runs in is a fresh temporary one all the same, so a
// stray dump.rdb never lands in the repository. It skips or fails the test
// like Tool when redis-server is missing (fails under CI=true).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Tool(t, RedisTool)
	dir := t.TempDir()
	p, addr := StartOnFreePort(t, func(addr string) *exec.Cmd {
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		cmd.Dir = dir
		return cmd
	})
	return &Redis{Addr: addr, Process: p}
}
