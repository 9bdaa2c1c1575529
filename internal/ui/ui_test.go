package ui

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	got := progressLine("sweep blobs", 15, 60, 1500*time.Millisecond)
	for _, want := range []string{"sweep blobs", "25%", "15/60", "1.5s", strings.Repeat("█", 7) + strings.Repeat("░", 23)} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := progressLine("mark", 7, 0, 0); !strings.Contains(got, "mark") || !strings.Contains(got, " 7 ") {
		t.Errorf("unknown total: %q", got)
	}
}

// Off a terminal, nothing is drawn: scripts read the summary instead.
func TestProgressSilentOffTerminal(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b)
	p.Update("mark", 1, 2)
	p.Done()
	if b.Len() != 0 {
		t.Errorf("drew %q on a buffer", b.String())
	}
}

// The plain layout uses fixed words so scripts can grep it.
func TestPlainLayout(t *testing.T) {
	var b bytes.Buffer
	p := New(&b, Text, false)
	p.Line(Fail, "certificate", "expired")
	p.Line(OK, "key", "RSA 4096")
	p.Field("subject", "CN=Registry")
	want := "FAIL  certificate            expired\nok    key                    RSA 4096\nsubject:             CN=Registry\n"
	if b.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", b.String(), want)
	}
}
