package settings

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"

	"regctl/internal/redact"
)

// Problem is one thing wrong with the settings, located by file, line and
// key path so the user can go straight to it.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	if _, bad := controlChar(p.File); bad {
		b.WriteString(strconv.Quote(p.File))
	} else {
		b.WriteString(p.File)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// InvalidError carries every problem found in one settings file. Commands
// map it to exit code 2 and write nothing.
type InvalidError struct {
	merr *multierror.Error
}

// Problems returns the problems, sorted by line.
func (e *InvalidError) Problems() []*Problem {
	out := make([]*Problem, 0, len(e.merr.Errors))
	for _, err := range e.merr.Errors {
		var p *Problem
		if errors.As(err, &p) {
			out = append(out, p)
		}
	}
	return out
}

func (e *InvalidError) Error() string { return e.merr.Error() }

// problems collects Problems for one file.
type problems struct {
	file     string
	line     func(path []string) int
	merr     *multierror.Error
	count    int
	warnings []*Problem
}

func newProblems(file string, line func([]string) int) *problems {
	return &problems{file: file, line: line}
}

// add records a problem at a key path (array indexes as decimal segments).
func (ps *problems) add(path []string, format string, args ...any) {
	ps.addProblem(ps.locate(path, format, args...))
}

// warn records something the user should know that does not make the
// settings invalid (a policy that can delete every tag, say).
func (ps *problems) warn(path []string, format string, args ...any) {
	ps.warnings = append(ps.warnings, ps.locate(path, format, args...))
}

func (ps *problems) locate(path []string, format string, args ...any) *Problem {
	p := &Problem{File: ps.file, Key: KeyString(path), Message: fmt.Sprintf(format, args...)}
	if ps.line != nil && len(path) > 0 {
		p.Line = ps.line(path)
	}
	return p
}

func (ps *problems) addProblem(p *Problem) {
	ps.merr = multierror.Append(ps.merr, p)
	ps.count++
}

// err returns nil when nothing was found, else an *InvalidError.
func (ps *problems) err() error {
	if ps.count == 0 {
		return nil
	}
	sort.SliceStable(ps.merr.Errors, func(i, j int) bool {
		return ps.merr.Errors[i].(*Problem).Line < ps.merr.Errors[j].(*Problem).Line
	})
	ps.merr.ErrorFormat = func(errs []error) string {
		var b strings.Builder
		if len(errs) == 1 {
			b.WriteString("invalid settings: 1 problem:\n")
		} else {
			fmt.Fprintf(&b, "invalid settings: %d problems:\n", len(errs))
		}
		for _, e := range errs {
			fmt.Fprintf(&b, "  %s\n", e)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	return &InvalidError{merr: ps.merr}
}

// Redacted stands for a secret value in messages and diffs.
const Redacted = "<redacted>"

// shown is how a message shows v, the value of the key at path: never the
// value of a key the schema marks secret, a string quoted and with a URL's
// credentials hidden, anything else as written. Every message that shows a
// value goes through here.
func shown(path []string, v any) string {
	if schema().secretAt(path) {
		return Redacted
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(redact.URL(s))
	}
	return fmt.Sprint(v)
}

// KeyString renders a key path as the user writes it:
// registry.notifications[1].url.
func KeyString(path []string) string {
	var b strings.Builder
	for i, seg := range path {
		if isIndex(seg) && i > 0 {
			fmt.Fprintf(&b, "[%s]", seg)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if strings.ContainsAny(seg, ". \"'") || seg == "" {
			fmt.Fprintf(&b, "%q", seg)
		} else {
			b.WriteString(seg)
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
