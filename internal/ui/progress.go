package ui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// Progress draws one line per phase of a long job (GC, migration) on a
// terminal, redrawn in place at most every 100 ms. Off a terminal it
// draws nothing: logs and the final summary say what happened.
type Progress struct {
	w       io.Writer
	on      bool
	mu      sync.Mutex
	phase   string
	last    time.Time
	started time.Time
	drawn   bool
}

// NewProgress draws on w only when w is a terminal. The bar has no
// colours, so NO_COLOR does not change it.
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w}
	if f, ok := w.(*os.File); ok {
		p.on = isatty.IsTerminal(f.Fd())
	}
	return p
}

// Update reports done of total in a phase; total 0 means unknown.
func (p *Progress) Update(phase string, done, total int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if phase != p.phase {
		if p.drawn {
			fmt.Fprintln(p.w)
		}
		p.phase, p.started, p.drawn = phase, now, false
	} else if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "\r\033[K%s", progressLine(phase, done, total, now.Sub(p.started)))
	p.drawn = true
}

// Done ends the current line.
func (p *Progress) Done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
	p.phase, p.drawn = "", false
}

func progressLine(phase string, done, total int, took time.Duration) string {
	const width = 30
	took = took.Round(100 * time.Millisecond)
	if total <= 0 {
		return fmt.Sprintf("%-18s %d  %s", phase, done, took)
	}
	filled := min(width, done*width/total)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	return fmt.Sprintf("%-18s %s %3d%%  %d/%d  %s", phase, bar, done*100/total, done, total, took)
}
