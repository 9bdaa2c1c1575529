package settings

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"regctl/internal/tomlsrc"
)

// DefaultSettingsPath is where regctl looks when neither --settings nor
// REGCTL_SETTINGS says otherwise.
const DefaultSettingsPath = "/etc/regctl/regctl.toml"

// ErrNoSettings is wrapped when the settings file does not exist.
var ErrNoSettings = errors.New("settings file not found")

// Loaded is a validated settings file with its location and source, so
// that later steps can resolve relative paths and point at lines.
type Loaded struct {
	// Path is the absolute path of the settings file.
	Path string
	// Source is the file as read, kept for in-place edits.
	Source   []byte
	Settings Settings
	// Warnings are located like problems but do not make the settings
	// invalid; commands show them and go on.
	Warnings []*Problem
	index    *tomlsrc.Index
	raw      map[string]any
}

// Dir is the folder relative paths resolve against.
func (l *Loaded) Dir() string { return filepath.Dir(l.Path) }

// Line returns the line where a key path is set, or 0 when it is not set.
func (l *Loaded) Line(path ...string) int {
	if !l.IsSet(path...) {
		return 0
	}
	return l.index.Line(path...)
}

// IsSet reports whether the file sets the key (rather than a default).
// An array-of-tables element is addressed by its decimal index:
// IsSet("registry", "cleanup_policies", "0", "enabled").
func (l *Loaded) IsSet(path ...string) bool {
	_, ok := l.lookup(path)
	return ok
}

// lookup is the value the file sets at path, as TOML decoded it.
func (l *Loaded) lookup(path []string) (any, bool) {
	var cur any = l.raw
	for _, seg := range path {
		var ok bool
		switch c := cur.(type) {
		case map[string]any:
			cur, ok = c[seg]
		case []map[string]any: // [[array.of.tables]]
			cur, ok = element(c, seg)
		case []any: // array = [{ inline = "tables" }]
			cur, ok = element(c, seg)
		}
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// element is arr[seg], seg being a decimal index.
func element[T any](arr []T, seg string) (any, bool) {
	i, err := strconv.Atoi(seg)
	if err != nil || !isIndex(seg) || i >= len(arr) {
		return nil, false
	}
	return arr[i], true
}

// Load reads and validates a settings file. A missing file wraps
// ErrNoSettings; an invalid one returns *InvalidError with every problem.
func Load(path string) (*Loaded, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (create it: an empty file means every default)", ErrNoSettings, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return Parse(abs, src)
}

// Parse validates settings source that claims to live at path (absolute).
func Parse(path string, src []byte) (*Loaded, error) {
	l := &Loaded{Path: path, Source: src, index: tomlsrc.NewIndex(src)}
	ps := newProblems(path, func(p []string) int { return l.index.Line(p...) })
	if r, bad := controlChar(path); bad {
		// The path goes into the rendered files' header comment.
		ps.addProblem(&Problem{File: path, Message: fmt.Sprintf("the settings file's path has a control character (%U): rename it or its folder", r)})
		return nil, ps.err()
	}

	// 1. Syntax. A syntax error stops here: nothing after it can be trusted.
	raw := map[string]any{}
	if _, err := toml.Decode(string(src), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if schema().secretAt(strings.Split(pe.LastKey, ".")) {
				// The parser's message may quote part of the value.
				msg = "the value of this secret key is not valid TOML (the parser's message is not shown: it may quote the value)"
			}
			ps.addProblem(&Problem{File: path, Line: syntaxLine(src, pe.Position), Key: pe.LastKey, Message: "TOML syntax: " + msg})
		} else {
			ps.addProblem(&Problem{File: path, Message: "TOML syntax: " + err.Error()})
		}
		return nil, ps.err()
	}
	l.raw = raw

	// 2. Shape: unknown keys and wrong types, all of them.
	schema().check(raw, nil, func(p []string, msg string) {
		ps.add(append([]string(nil), p...), "%s", msg)
	})
	if ps.count > 0 {
		return nil, ps.err()
	}

	// 3. Values. The shape is right, so decoding cannot fail on types.
	l.Settings = Defaults()
	if _, err := toml.Decode(string(src), &l.Settings); err != nil {
		ps.addProblem(&Problem{File: path, Message: err.Error()})
		return nil, ps.err()
	}
	validate(l, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	l.Warnings = ps.warnings
	return l, nil
}

// syntaxLine counts the line from the error's byte offset: the parser
// puts an unexpected newline on the next line, while the user's mistake
// is on the line it ends.
func syntaxLine(src []byte, pos toml.Position) int {
	if pos.Start > 0 && pos.Start <= len(src) {
		return 1 + bytes.Count(src[:pos.Start], []byte("\n"))
	}
	return pos.Line
}
