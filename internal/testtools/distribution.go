package testtools

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// DistributionTool is the binary name of CNCF Distribution's registry
// (github.com/distribution/distribution/v3/cmd/registry@v3.1.2).
const DistributionTool = "registry"

// StartDistribution runs `registry serve configPath` (CNCF Distribution
// v3.1.2) and waits until addr, which must be the config's http.addr,
// accepts connections. It skips or fails the test like Tool when the
// registry binary is missing, and fails it when the registry does not come
// up (Distribution exits with status 1 on a config it rejects).
//
// REGISTRY_* variables are removed from the registry's environment, since
// Distribution reads them as overrides of config keys
// (REGISTRY_HTTP_ADDR overrides http.addr, for instance).
func StartDistribution(t testing.TB, configPath, addr string) *Process {
	t.Helper()
	p, err := TryStartDistribution(t, configPath, addr)
	if err != nil {
		t.Fatalf("testtools: %v", err)
	}
	return p
}

// TryStartDistribution is StartDistribution returning an error instead of
// failing the test when the registry does not come up. A missing binary
// still skips or fails the test, as in Tool.
func TryStartDistribution(t testing.TB, configPath, addr string) (*Process, error) {
	t.Helper()
	cmd := exec.Command(Tool(t, DistributionTool), "serve", configPath)
	cmd.Env = withoutPrefix(os.Environ(), "REGISTRY_")
	return TryStartCmd(t, addr, cmd)
}

// withoutPrefix returns env without the variables whose names start with
// prefix.
func withoutPrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
