package integration

import (
	"testing"

	"regctl/internal/testtools"
)

// TestOCIConformance runs the whole OCI distribution-spec conformance
// suite against regctl serve, as configured by default and with the
// referrers fallback tags kept up to date. It fails on any failure and on
// any skip: the optional paths other registries skip are supported here.
func TestOCIConformance(t *testing.T) {
	testtools.Tool(t, "conformance") // skip (or fail under CI) before starting anything
	for _, tc := range []struct{ name, extra string }{
		{"default", ""},
		{"fallback-tags", "regctl:\n  referrers:\n    fallbacktags: true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testtools.FreeAddr(t)
			startServe(t, serveConfig(t, addr, tc.extra), addr)
			runConformance(t, addr).requireAllPass(t)
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
