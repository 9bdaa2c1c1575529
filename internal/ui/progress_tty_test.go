package ui

import (
	"io"
	"strings"
	"testing"

	"regctl/internal/testtools"
)

// On a terminal each phase gets its line, redrawn in place, and the
// last state of a phase stays on screen when the next one starts.
func TestProgressOnTerminal(t *testing.T) {
	pty, tty := testtools.OpenPTY(t)
	drawn := make(chan string)
	go func() {
		b, _ := io.ReadAll(pty) // ends with EIO once the terminal side is closed
		drawn <- string(b)
	}()
	p := NewProgress(tty)
	p.Update("scan", 0, 2)
	p.Update("scan", 2, 2)
	p.Update("mark", 0, 4)
	p.Update("mark", 1, 4)
	p.Update("mark", 4, 4) // the end of a phase is always drawn
	p.Done()
	p.Update("delete-blobs", 3, 0)
	p.Done()
	tty.Close()
	got := <-drawn

	// The terminal turns "\n" into "\r\n".
	lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (one a phase), got %d: %q", len(lines), got)
	}
	for i, want := range []struct{ phase, last string }{
		{"scan", "100%  2/2"}, {"mark", "100%  4/4"}, {"delete-blobs", " 3 "},
	} {
		draws := strings.Split(lines[i], "\r\x1b[K")[1:]
		if len(draws) == 0 {
			t.Errorf("line %d is not redrawn in place: %q", i, lines[i])
			continue
		}
		last := draws[len(draws)-1]
		if !strings.HasPrefix(last, want.phase) || !strings.Contains(last, want.last) {
			t.Errorf("line %d ends as %q, want phase %q with %q", i, last, want.phase, want.last)
		}
	}
}
