package tomlsrc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// KeyValue is one key of a table ReplaceTable writes, with its value as
// a TOML literal (see Literal).
type KeyValue struct {
	Key     string
	Literal string
}

// ReplaceTable returns src with the table at old replaced by a table at
// repl holding values (in that order). The old table's lines stay in the
// file as comments, below the comment note, so whoever reads the file
// later sees what it was; every other line is kept as it is. When src
// has no table at old, the new table is appended.
//
// Only a table written with its own [header] can be replaced: one made
// of dotted keys or an inline table is refused with the line to edit by
// hand. As with Set, the result is checked with BurntSushi/toml: it must
// decode to src's document with old removed and repl set, and nothing
// else changed, or ReplaceTable returns an error and no output.
func ReplaceTable(src []byte, old, repl Path, values []KeyValue, note string) ([]byte, error) {
	if len(old) == 0 || len(repl) == 0 {
		return nil, errors.New("tomlsrc: empty table path")
	}
	if strings.ContainsAny(note, "\r\n") {
		return nil, errors.New("tomlsrc: the note must be one line")
	}
	var before map[string]any
	if _, err := toml.Decode(string(src), &before); err != nil {
		return nil, fmt.Errorf("tomlsrc: not editing a file that does not parse: %w", err)
	}
	want := map[string]any{}
	for _, kv := range values {
		v, err := parseLiteral(kv.Literal)
		if err != nil {
			return nil, err
		}
		if _, dup := want[kv.Key]; dup {
			return nil, fmt.Errorf("tomlsrc: key %q given twice", kv.Key)
		}
		want[kv.Key] = v
	}

	ix := NewIndex(src)
	if d := ix.def(repl); d != nil {
		return nil, fmt.Errorf("tomlsrc: %s is already defined on line %d", dottedName(repl), d.line)
	}
	nl := lineEnding(src)
	var body strings.Builder
	body.WriteString("[" + dottedName(repl) + "]" + nl)
	for _, kv := range values {
		body.WriteString(quoteKey(kv.Key) + " = " + kv.Literal + nl)
	}

	var out []byte
	switch d := ix.def(old); {
	case d == nil:
		// Nothing to replace (the table is a default): append, where the
		// ancestors allow a new [header].
		for n := 1; n < len(repl); n++ {
			a := ix.def(repl[:n])
			if a == nil {
				break
			}
			if a.kind != kTable && a.kind != kImplicit {
				return nil, fmt.Errorf("tomlsrc: cannot add [%s]: %s is %s on line %d; edit that line by hand",
					dottedName(repl), dottedName(repl[:n]), describe(a.kind), a.line)
			}
		}
		var b bytes.Buffer
		b.Write(src)
		if len(src) > 0 {
			if !bytes.HasSuffix(src, []byte("\n")) {
				b.WriteString(nl)
			}
			if !bytes.HasSuffix(src, []byte("\n\n")) && !bytes.HasSuffix(src, []byte("\n"+nl)) {
				b.WriteString(nl)
			}
		}
		if note != "" {
			b.WriteString("# " + note + nl)
		}
		b.WriteString(body.String())
		out = b.Bytes()
	case d.kind == kTable && d.section >= 0:
		start := lineStart(src, d.line)
		end := ix.sections[d.section].last
		if start < 0 || end < start {
			return nil, fmt.Errorf("tomlsrc: cannot locate [%s] on line %d", dottedName(old), d.line)
		}
		var b strings.Builder
		if note != "" {
			b.WriteString("# " + note + nl)
		}
		for _, l := range strings.SplitAfter(string(src[start:end]), "\n") {
			if l == "" {
				continue
			}
			b.WriteString("# " + l)
			if !strings.HasSuffix(l, "\n") {
				b.WriteString(nl)
			}
		}
		b.WriteString(body.String())
		out = splice(src, start, end, b.String())
	default:
		return nil, fmt.Errorf("tomlsrc: cannot replace %s: it is %s on line %d; edit it by hand",
			dottedName(old), describe(d.kind), d.line)
	}

	var after map[string]any
	if _, err := toml.Decode(string(out), &after); err != nil {
		return nil, fmt.Errorf("tomlsrc: edit would produce invalid TOML, file left unchanged: %w", err)
	}
	deleteIn(before, old)
	if err := setIn(before, repl, want); err != nil {
		return nil, err
	}
	if !equal(before, after) {
		return nil, fmt.Errorf("tomlsrc: replacing %s would change other keys (is part of it defined elsewhere?), file left unchanged", dottedName(old))
	}
	return out, nil
}

// lineStart is the offset where 1-based line n starts, -1 past the end.
func lineStart(src []byte, n int) int {
	off := 0
	for l := 1; l < n; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	return off
}

// deleteIn removes path from a decoded document, if it is there.
func deleteIn(m map[string]any, path Path) {
	for _, seg := range path[:len(path)-1] {
		next, ok := m[seg].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, path[len(path)-1])
}

// Literal writes a decoded TOML value (string, bool, integer, float, or
// a list of those) as a TOML literal for Set and ReplaceTable.
func Literal(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quoteString(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan", nil
		case math.IsInf(x, 1):
			return "inf", nil
		case math.IsInf(x, -1):
			return "-inf", nil
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0" // else it reads back as an integer
		}
		return s, nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			l, err := Literal(e)
			if err != nil {
				return "", err
			}
			parts[i] = l
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	default:
		return "", fmt.Errorf("tomlsrc: cannot write a %T as a TOML literal", v)
	}
}

// quoteString writes s as a TOML basic string.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// SortedKeyValues turns a decoded table into KeyValues sorted by key.
func SortedKeyValues(m map[string]any) ([]KeyValue, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kvs := make([]KeyValue, 0, len(keys))
	for _, k := range keys {
		l, err := Literal(m[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		kvs = append(kvs, KeyValue{Key: k, Literal: l})
	}
	return kvs, nil
}
