package tomlsrc

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Set returns src with the key at path set to the TOML literal value
// (e.g. `true`, `"x"`), changing as little as possible.
//
// An existing value is replaced in place; a missing key is added under its
// table's [header], or a new [header] is appended. The result is checked
// with BurntSushi/toml: it must parse, hold the new value at path and leave
// every other key unchanged, otherwise Set returns an error and no output.
func Set(src []byte, path Path, literal string) ([]byte, error) {
	if len(path) == 0 {
		return nil, errors.New("tomlsrc: empty key path")
	}
	var before map[string]any
	if _, err := toml.Decode(string(src), &before); err != nil {
		// Editing a broken file could hide or worsen the problem.
		return nil, fmt.Errorf("tomlsrc: not editing a file that does not parse: %w", err)
	}
	want, err := parseLiteral(literal)
	if err != nil {
		return nil, err
	}
	out, err := edit(src, path, literal)
	if err != nil {
		return nil, err
	}
	if err := verify(before, out, path, want); err != nil {
		return nil, err
	}
	return out, nil
}

// parseLiteral decodes literal as a single TOML value.
func parseLiteral(literal string) (any, error) {
	// A newline could smuggle in extra keys or mix line endings.
	if strings.ContainsAny(literal, "\r\n") {
		return nil, fmt.Errorf("tomlsrc: value %q must be on one line", literal)
	}
	var m map[string]any
	if _, err := toml.Decode("v = "+literal+"\n", &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("tomlsrc: %q is not a single TOML value", literal)
	}
	return m["v"], nil
}

// edit makes the textual change; verify checks it afterwards.
func edit(src []byte, path Path, literal string) ([]byte, error) {
	ix := NewIndex(src)
	name := dottedName(path)

	// 1. The key exists: replace just its value text.
	if d := ix.def(path); d != nil {
		switch d.kind {
		case kValue, kInline, kArray:
			if d.end > d.start {
				return splice(src, d.start, d.end, literal), nil
			}
		}
		return nil, fmt.Errorf("tomlsrc: cannot set %s: it is %s on line %d, not a value", name, describe(d.kind), d.line)
	}

	table, key := path[:len(path)-1], path[len(path)-1]
	nl := lineEnding(src)

	// 2. Its table has a header (or is the root): add a line to that section.
	if len(table) == 0 {
		return insertLine(src, ix.sections[0], key, literal, nl), nil
	}
	if d := ix.def(table); d != nil && d.section >= 0 {
		return insertLine(src, ix.sections[d.section], key, literal, nl), nil
	}

	// 3. A new header is needed. It must not redefine or reach into a table
	// that TOML considers closed (dotted keys, inline tables, arrays).
	for n := 1; n <= len(table); n++ {
		d := ix.def(table[:n])
		if d == nil {
			break // nothing below an undefined table can be defined
		}
		if d.kind != kTable && d.kind != kImplicit {
			return nil, fmt.Errorf("tomlsrc: cannot add %s: %s is %s on line %d; edit that line by hand",
				name, dottedName(table[:n]), describe(d.kind), d.line)
		}
	}
	return appendTable(src, table, key, literal, nl), nil
}

func describe(k kind) string {
	switch k {
	case kTable, kImplicit:
		return "a table"
	case kDotted:
		return "a table defined by dotted keys"
	case kInline:
		return "an inline table"
	case kArray:
		return "an array"
	case kAOT:
		return "an array of tables"
	case kAOTElem:
		return "an array-of-tables element"
	default:
		return "a value"
	}
}

func splice(src []byte, start, end int, text string) []byte {
	out := make([]byte, 0, len(src)-(end-start)+len(text))
	out = append(out, src[:start]...)
	out = append(out, text...)
	return append(out, src[end:]...)
}

// lineEnding returns the file's line ending, judged by its first line.
func lineEnding(src []byte) string {
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// insertLine adds `key = literal` after the section's last key/value line,
// so comments and blank lines before the next header stay below it.
func insertLine(src []byte, s section, key, literal, nl string) []byte {
	line := s.indent + quoteKey(key) + " = " + literal
	if s.last == len(src) && s.last > 0 && src[s.last-1] != '\n' {
		// Inserting after a final line without newline: keep it absent.
		return splice(src, s.last, s.last, nl+line)
	}
	return splice(src, s.last, s.last, line+nl)
}

// appendTable adds a blank line, [table] and `key = literal` at the end.
func appendTable(src []byte, table Path, key, literal, nl string) []byte {
	var b bytes.Buffer
	b.Write(src)
	final := bytes.HasSuffix(src, []byte("\n"))
	if len(src) > 0 {
		if !final {
			b.WriteString(nl)
		}
		if !bytes.HasSuffix(src, []byte("\n\n")) && !bytes.HasSuffix(src, []byte("\n"+nl)) {
			b.WriteString(nl) // separate from the previous table, once
		}
	}
	b.WriteString("[" + dottedName(table) + "]" + nl + quoteKey(key) + " = " + literal)
	if final || len(src) == 0 {
		b.WriteString(nl)
	}
	return b.Bytes()
}

// quoteKey writes key bare when TOML allows it, else as a basic string.
func quoteKey(key string) string {
	bare := key != ""
	for i := 0; i < len(key); i++ {
		if !isBare(key[i]) || key[i] >= 0x80 {
			bare = false
		}
	}
	if bare {
		return key
	}
	return quoteString(key)
}

func dottedName(path Path) string {
	parts := make([]string, len(path))
	for i, k := range path {
		parts[i] = quoteKey(k)
	}
	return strings.Join(parts, ".")
}

// verify is the safety net: out must decode to before with only path changed.
func verify(before map[string]any, out []byte, path Path, want any) error {
	var after map[string]any
	if _, err := toml.Decode(string(out), &after); err != nil {
		return fmt.Errorf("tomlsrc: edit would produce invalid TOML, file left unchanged: %w", err)
	}
	if err := setIn(before, path, want); err != nil {
		return err
	}
	if !equal(before, after) {
		return fmt.Errorf("tomlsrc: edit of %s would change other keys, file left unchanged", dottedName(path))
	}
	return nil
}

// setIn sets path in a decoded document, creating missing tables.
func setIn(m map[string]any, path Path, v any) error {
	var cur any = m
	for i, seg := range path {
		last := i == len(path)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[seg] = v
				return nil
			}
			next, ok := c[seg]
			if !ok {
				next = map[string]any{}
				c[seg] = next
			}
			cur = next
		case []map[string]any: // array of tables
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(c) || last {
				return fmt.Errorf("tomlsrc: %s does not name a value", dottedName(path))
			}
			cur = c[n]
		case []any: // array value
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(c) {
				return fmt.Errorf("tomlsrc: %s does not name a value", dottedName(path))
			}
			if last {
				c[n] = v
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("tomlsrc: %s crosses a non-table value", dottedName(path))
		}
	}
	return nil
}

// equal is reflect.DeepEqual, except that NaN equals NaN and times compare
// by instant and zone rather than by *time.Location pointer.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []map[string]any:
		y, ok := b.([]map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || x != x && y != y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.String() == y.String()
	default:
		return reflect.DeepEqual(a, b)
	}
}
