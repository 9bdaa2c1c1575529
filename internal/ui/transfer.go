package ui

import (
	"fmt"
	"strings"
	"time"
)

// TransferStats is the state of a copy (migration) for Progress.Transfer
// and TransferLine.
type TransferStats struct {
	Phase                 string
	Objects, ObjectsTotal int64
	Bytes, BytesTotal     int64
	// Listed is true once the totals are final; until then the ETA is
	// unknown.
	Listed  bool
	Elapsed time.Duration
}

// Active reports whether the progress line is drawn (a terminal).
func (p *Progress) Active() bool { return p.on }

// Transfer draws a copy's progress line: a bar over the objects, bytes,
// rate and ETA. Like Update it redraws at most every 100 ms.
func (p *Progress) Transfer(s TransferStats) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if s.Phase != p.phase {
		if p.drawn {
			fmt.Fprintln(p.w)
		}
		p.phase, p.started, p.drawn = s.Phase, now, false
	} else if now.Sub(p.last) < 100*time.Millisecond && !(s.Listed && s.Objects == s.ObjectsTotal) {
		return
	}
	p.last = now
	const width = 24
	var bar string
	if s.Listed && s.ObjectsTotal > 0 {
		filled := int(min(width, s.Objects*width/s.ObjectsTotal))
		bar = strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	} else {
		// The total is still growing: a block moving along says so
		// better than a bar that fills up and then jumps back.
		pos := int(s.Elapsed/(150*time.Millisecond)) % (width - 3)
		bar = strings.Repeat("░", pos) + "███" + strings.Repeat("░", width-3-pos)
	}
	fmt.Fprintf(p.w, "\r\033[K%-10s %s %s", s.Phase, bar, TransferLine(s))
	p.drawn = true
}

// TransferLine is the figures of a copy on one line, for the progress
// bar and for the periodic lines printed when output is no terminal:
// "1200/45000 objects  12.0 MiB/1.1 GiB  8.3 MiB/s  ETA 2m10s".
func TransferLine(s TransferStats) string {
	total := fmt.Sprint(s.ObjectsTotal)
	if !s.Listed {
		total += "+" // still listing
	}
	secs := s.Elapsed.Seconds()
	rate, orate := 0.0, 0.0
	if secs > 0 {
		rate, orate = float64(s.Bytes)/secs, float64(s.Objects)/secs
	}
	eta := "ETA -"
	if s.Listed && secs > 1 {
		// The slower of the two estimates: many small objects are bound
		// by requests, a few big ones by bytes.
		var left float64
		if orate > 0 {
			left = float64(s.ObjectsTotal-s.Objects) / orate
		}
		if rate > 0 {
			left = max(left, float64(s.BytesTotal-s.Bytes)/rate)
		}
		eta = "ETA " + (time.Duration(left) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%s objects  %s/%s  %s/s  %.0f obj/s  %s  %s",
		s.Objects, total, Bytes(s.Bytes), Bytes(s.BytesTotal), Bytes(int64(rate)), orate, eta, s.Elapsed.Round(time.Second))
}

// Bytes formats a size with binary units: "979.3 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Table prints rows under a header, columns aligned; the header is bold
// on a terminal.
func (p *Printer) Table(header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], len([]rune(c)))
			}
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := widths[i] - len([]rune(c))
			if i > 0 && isNumber(c) {
				b.WriteString(strings.Repeat(" ", pad) + c) // numbers right-aligned
			} else if i < len(cells)-1 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(c)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	indent := ""
	if p.Styled {
		indent = "  "
		fmt.Fprintln(p.Out, indent+p.r.NewStyle().Bold(true).Render(line(header)))
	} else {
		fmt.Fprintln(p.Out, line(header))
	}
	for _, r := range rows {
		fmt.Fprintln(p.Out, indent+line(r))
	}
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' && c != ',' {
			return false
		}
	}
	return true
}
