// Package ui owns how regctl talks to people: every lipgloss style lives
// here, and so does the plain layout used when output is not a terminal
// or NO_COLOR is set. Commands describe what to say; ui decides how.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"
)

// Format is the --output choice.
type Format string

const (
	Text Format = "text"
	JSON Format = "json"
)

// Printer writes one command's output.
type Printer struct {
	Out    io.Writer
	Format Format
	// Styled is true on a terminal without NO_COLOR or --no-color.
	Styled bool
	r      *lipgloss.Renderer
}

// New makes a Printer; styling is on only for a terminal, and never when
// noColor is set or NO_COLOR is in the environment.
func New(out io.Writer, format Format, noColor bool) *Printer {
	p := &Printer{Out: out, Format: format}
	if f, ok := out.(*os.File); ok && !noColor && os.Getenv("NO_COLOR") == "" && format == Text {
		p.Styled = isatty.IsTerminal(f.Fd())
	}
	p.r = lipgloss.NewRenderer(out)
	return p
}

// Status is a line's verdict.
type Status int

const (
	OK Status = iota
	Warn
	Fail
	Info
)

var (
	colors = map[Status]lipgloss.Color{OK: "2", Warn: "3", Fail: "1", Info: "6"}
	marks  = map[Status]string{OK: "✓", Warn: "!", Fail: "✗", Info: "•"}
	words  = map[Status]string{OK: "ok", Warn: "warn", Fail: "FAIL", Info: "info"}
)

// JSON writes v as indented JSON (for --output json).
func (p *Printer) JSON(v any) error {
	enc := json.NewEncoder(p.Out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Title starts a section.
func (p *Printer) Title(s string) {
	if p.Styled {
		fmt.Fprintln(p.Out, p.r.NewStyle().Bold(true).Render(s))
		return
	}
	fmt.Fprintln(p.Out, s)
}

// Line prints one verdict line: a mark and label on a terminal, a fixed
// word in plain mode so that scripts can grep it.
func (p *Printer) Line(st Status, label, detail string) {
	if p.Styled {
		mark := p.r.NewStyle().Foreground(colors[st]).Bold(true).Render(marks[st])
		l := p.r.NewStyle().Width(22).Render(label)
		fmt.Fprintf(p.Out, "  %s %s %s\n", mark, l, p.r.NewStyle().Faint(st == OK || st == Info).Render(detail))
		return
	}
	fmt.Fprintf(p.Out, "%-5s %-22s %s\n", words[st], label, detail)
}

// Hint prints an indented follow-up under a line (how to fix, say).
func (p *Printer) Hint(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if p.Styled {
			fmt.Fprintf(p.Out, "      %s\n", p.r.NewStyle().Foreground(lipgloss.Color("3")).Render(l))
		} else {
			fmt.Fprintf(p.Out, "      %s\n", l)
		}
	}
}

// Field prints "key: value" in a definition list.
func (p *Printer) Field(key, value string) {
	if p.Styled {
		k := p.r.NewStyle().Faint(true).Width(20).Render(key)
		fmt.Fprintf(p.Out, "  %s %s\n", k, value)
		return
	}
	fmt.Fprintf(p.Out, "%-20s %s\n", key+":", value)
}

// Diff prints a unified diff, coloured on a terminal.
func (p *Printer) Diff(d string) {
	for _, l := range strings.SplitAfter(d, "\n") {
		if l == "" {
			continue
		}
		if !p.Styled {
			io.WriteString(p.Out, l)
			continue
		}
		st := p.r.NewStyle()
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			st = st.Bold(true)
		case strings.HasPrefix(l, "+"):
			st = st.Foreground(lipgloss.Color("2"))
		case strings.HasPrefix(l, "-"):
			st = st.Foreground(lipgloss.Color("1"))
		case strings.HasPrefix(l, "@@"):
			st = st.Foreground(lipgloss.Color("6"))
		}
		fmt.Fprintln(p.Out, st.Render(strings.TrimSuffix(l, "\n")))
	}
}

// Text prints a plain paragraph.
func (p *Printer) Text(s string) { fmt.Fprintln(p.Out, s) }

// ErrorText formats an error for stderr: red "error:" on a terminal.
func ErrorText(w io.Writer, noColor bool, msg string) string {
	return prefixed(w, noColor, "error:", "1", msg)
}

// WarningText formats a warning for stderr: yellow "warning:" on a terminal.
func WarningText(w io.Writer, noColor bool, msg string) string {
	return prefixed(w, noColor, "warning:", "3", msg)
}

func prefixed(w io.Writer, noColor bool, prefix string, color lipgloss.Color, msg string) string {
	styled := false
	if f, ok := w.(*os.File); ok && !noColor && os.Getenv("NO_COLOR") == "" {
		styled = isatty.IsTerminal(f.Fd())
	}
	if styled {
		r := lipgloss.NewRenderer(w)
		return r.NewStyle().Foreground(color).Bold(true).Render(prefix) + " " + msg
	}
	return prefix + " " + msg
}
