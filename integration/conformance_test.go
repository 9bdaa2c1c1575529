package integration

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"regctl/internal/testtools"
)

// junitSuites is the root of the conformance suite's junit.xml.
type junitSuites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
}

// TestOCIConformance runs the whole OCI distribution-spec conformance
// suite against regctl serve. It fails on any failure and on any skip:
// the optional paths other registries skip are supported here.
func TestOCIConformance(t *testing.T) {
	suite := testtools.Tool(t, "conformance")
	addr := testtools.FreeAddr(t)
	startServe(t, serveConfig(t, addr, ""), addr)

	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_RESULTS_DIR="+results,
	)
	out, runErr := cmd.CombinedOutput()

	b, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("no junit.xml (%v); suite said (%v):\n%s", err, runErr, out)
	}
	var s junitSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	t.Logf("OCI conformance: %d tests, %d failures, %d errors, %d skipped", s.Tests, s.Failures, s.Errors, s.Skipped)
	if s.Failures+s.Errors+s.Skipped > 0 || s.Tests < 800 || runErr != nil {
		for _, line := range regexp.MustCompile(`(?m)^.*failed test.*$`).FindAll(out, 60) {
			t.Log(string(line))
		}
		t.Errorf("want every test to pass and none skipped; suite exit: %v\n%s", runErr, tail(out, 4000))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
