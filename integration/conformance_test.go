package integration

import (
	"testing"

	"regctl/internal/testtools"
)

// TestOCIConformance runs the whole OCI distribution-spec conformance
// suite against regctl serve. It fails on any failure and on any skip:
// the optional paths other registries skip are supported here.
func TestOCIConformance(t *testing.T) {
	testtools.Tool(t, "conformance") // skip (or fail under CI) before starting anything
	addr := testtools.FreeAddr(t)
	startServe(t, serveConfig(t, addr, ""), addr)
	runConformance(t, addr).requireAllPass(t)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
