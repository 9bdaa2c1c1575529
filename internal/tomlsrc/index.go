// Package tomlsrc locates and edits keys in TOML source text.
//
// BurntSushi/toml decodes values but does not report where a key was
// written, and it cannot rewrite a file without losing comments. This
// package is a small, tolerant scanner that records where each key lives so
// regctl can point at the offending line and change one value in place.
// It is a locator, not a validator: malformed input yields a partial index.
package tomlsrc

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is a key path; array-of-tables elements are addressed by their
// decimal index: ["registry","notifications","1","url"].
type Path []string

// kind says how a path came to exist. Set uses it to decide whether a new
// [header] can be appended without clashing with the existing document.
type kind uint8

const (
	kImplicit kind = iota // prefix of a [header] with no header of its own
	kTable                // [header]
	kDotted               // intermediate table of a dotted key (a in a.b = 1)
	kInline               // inline table value { ... }
	kArray                // array value [ ... ]
	kAOT                  // array of tables, the array itself
	kAOTElem              // one [[header]] element
	kValue                // any other value
)

// def is what the index knows about one path.
type def struct {
	line       int
	kind       kind
	start, end int // byte span of the value text (kValue, kInline, kArray)
	section    int // section opened by the header (kTable, kAOTElem), else -1
}

// section is the run of key/value lines after one header, or after the
// start of the file for section 0. Set inserts new keys at last.
type section struct {
	last   int    // offset just past the line holding the last key/value
	indent string // indentation of that key/value line
}

// Index records the 1-based line where each key path, table header and
// array-of-tables element is defined.
type Index struct {
	defs     map[string]*def
	sections []section
}

// NewIndex scans src. It never fails; unparsable lines are skipped.
func NewIndex(src []byte) *Index {
	p := &parser{
		src:  src,
		line: 1,
		ix:   &Index{defs: map[string]*def{}, sections: []section{{}}},
		aot:  map[string]int{},
	}
	if strings.HasPrefix(string(src), "\uFEFF") {
		// A byte order mark is not part of the first key, and root keys
		// must be inserted after it.
		p.pos = 3
		p.ix.sections[0].last = 3
	}
	p.parse()
	return p.ix
}

// Line returns the line of path; if path itself is not found, the line of
// its nearest defined ancestor; 0 if none.
func (ix *Index) Line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if d := ix.def(path[:n]); d != nil {
			return d.line
		}
	}
	return 0
}

func (ix *Index) def(path Path) *def { return ix.defs[pathKey(path)] }

// pathKey length-prefixes each segment so that no two distinct paths
// (keys may contain any character, even NUL) share a map key.
func pathKey(path Path) string {
	var b strings.Builder
	for _, s := range path {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}

// extend returns a new slice so that sibling paths never share storage.
func extend(base Path, segs ...string) Path {
	out := make(Path, 0, len(base)+len(segs))
	return append(append(out, base...), segs...)
}

type parser struct {
	src   []byte
	pos   int
	line  int
	ix    *Index
	aot   map[string]int // array-of-tables path -> elements seen so far
	table Path           // resolved path of the current table
	sec   int            // current section
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

// peek returns the byte off positions ahead, or 0 past the end, so callers
// never index out of range on truncated input.
func (p *parser) peek(off int) byte {
	if i := p.pos + off; i < len(p.src) {
		return p.src[i]
	}
	return 0
}

// advance moves one byte, counting lines. Callers check eof first.
func (p *parser) advance() {
	if p.src[p.pos] == '\n' {
		p.line++
	}
	p.pos++
}

// skipSpace skips blanks within a line. A CR is treated as a blank so
// CRLF files need no special handling.
func (p *parser) skipSpace() {
	for c := p.peek(0); !p.eof() && (c == ' ' || c == '\t' || c == '\r'); c = p.peek(0) {
		p.pos++
	}
}

// skipLine moves past the next newline without interpreting anything.
func (p *parser) skipLine() {
	for !p.eof() {
		c := p.src[p.pos]
		p.advance()
		if c == '\n' {
			return
		}
	}
}

// skipBlank skips blanks, newlines and comments, as allowed between the
// items of arrays and (since TOML 1.1) inline tables.
func (p *parser) skipBlank() {
	for {
		p.skipSpace()
		switch p.peek(0) {
		case '\n':
			p.advance()
		case '#':
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
		if p.eof() {
			return
		}
	}
}

// define records path unless it is already known. A later [header] turns
// an implicit table explicit; otherwise the first definition wins. It
// returns the def only when it was created or upgraded, so callers never
// overwrite the span of a (duplicate, invalid) earlier definition.
func (p *parser) define(path Path, line int, k kind) *def {
	key := pathKey(path)
	if d, ok := p.ix.defs[key]; ok {
		if d.kind == kImplicit && k != kImplicit {
			d.line, d.kind = line, k
			return d
		}
		return nil
	}
	d := &def{line: line, kind: k, section: -1}
	p.ix.defs[key] = d
	return d
}

func (p *parser) parse() {
	for !p.eof() {
		p.skipSpace()
		switch p.peek(0) {
		case '\n':
			p.advance()
		case '#':
			p.skipLine()
		case '[':
			p.header()
		default:
			if !p.eof() {
				p.keyValue()
			}
		}
	}
}

// header handles [a.b] and [[a.b]] lines.
func (p *parser) header() {
	line := p.line
	p.pos++
	arr := p.peek(0) == '['
	if arr {
		p.pos++
	}
	keys, ok := p.key()
	ok = ok && p.peek(0) == ']' && (!arr || p.peek(1) == ']')
	p.skipLine()
	if !ok {
		return
	}

	// Prefixes that name an array of tables refer to its last element,
	// so [arr.sub] after [[arr]] resolves to arr.<n>.sub.
	var path Path
	for _, k := range keys[:len(keys)-1] {
		path = extend(path, k)
		p.define(path, line, kImplicit)
		if n, ok := p.aot[pathKey(path)]; ok {
			path = extend(path, strconv.Itoa(n-1))
		}
	}
	path = extend(path, keys[len(keys)-1])

	sec := len(p.ix.sections)
	p.ix.sections = append(p.ix.sections, section{last: p.pos})
	k := kTable
	if arr {
		key := pathKey(path)
		n := p.aot[key]
		p.aot[key] = n + 1
		p.define(path, line, kAOT)
		path = extend(path, strconv.Itoa(n))
		k = kAOTElem
	}
	if d := p.define(path, line, k); d != nil {
		d.section = sec
	}
	p.table, p.sec = path, sec
}

// keyValue handles one top-level `key = value` line of the current table.
func (p *parser) keyValue() {
	line, keyStart := p.line, p.pos
	keys, ok := p.key()
	if !ok || p.peek(0) != '=' {
		p.skipLine()
		return
	}
	p.pos++
	p.skipSpace()
	p.value(p.dotted(p.table, keys, line), line)
	p.skipLine()

	// Remember where this table's key/value lines end, for Set.
	s := &p.ix.sections[p.sec]
	s.last = p.pos
	s.indent = indentBefore(p.src, keyStart)
}

// indentBefore returns the blanks between the start of the line and at.
func indentBefore(src []byte, at int) string {
	start := at
	for start > 0 && (src[start-1] == ' ' || src[start-1] == '\t') {
		start--
	}
	return string(src[start:at])
}

// dotted defines the intermediate tables of a dotted key and returns the
// full path of its value.
func (p *parser) dotted(base Path, keys []string, line int) Path {
	path := extend(base)
	for i, k := range keys {
		path = extend(path, k)
		if i < len(keys)-1 {
			p.define(path, line, kDotted)
		}
	}
	return path
}

// key reads a dotted key and the blanks after it.
func (p *parser) key() ([]string, bool) {
	var keys []string
	for {
		p.skipSpace()
		k, ok := p.keySegment()
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
		p.skipSpace()
		if p.peek(0) != '.' {
			return keys, true
		}
		p.pos++
	}
}

func isBare(c byte) bool {
	// Bytes >= 0x80 are accepted leniently (non-ASCII bare keys).
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c >= 0x80
}

func (p *parser) keySegment() (string, bool) {
	switch c := p.peek(0); {
	case p.eof():
		return "", false
	case c == '"' || c == '\'':
		return p.quotedKey(c)
	default:
		start := p.pos
		for !p.eof() && isBare(p.src[p.pos]) {
			p.pos++
		}
		return string(p.src[start:p.pos]), p.pos > start
	}
}

// quotedKey reads a single-line "basic" or 'literal' key, decoding escapes
// so that "a\u002Eb" and "a.b" name the same key.
func (p *parser) quotedKey(q byte) (string, bool) {
	p.pos++
	var b strings.Builder
	for !p.eof() {
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), true
		case c == '\n':
			return "", false
		case c == '\\' && q == '"':
			p.pos++
			p.escape(&b)
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", false
}

// escape decodes the escape sequence after a backslash.
func (p *parser) escape(b *strings.Builder) {
	const from, to = "btnfre\"\\", "\b\t\n\f\r\x1b\"\\"
	c := p.peek(0)
	if i := strings.IndexByte(from, c); i >= 0 && !p.eof() {
		b.WriteByte(to[i])
		p.pos++
		return
	}
	digits := 0
	switch c {
	case 'x':
		digits = 2
	case 'u':
		digits = 4
	case 'U':
		digits = 8
	}
	if digits == 0 || p.pos+1+digits > len(p.src) {
		return // invalid escape: the caller reads on from here
	}
	n, err := strconv.ParseUint(string(p.src[p.pos+1:p.pos+1+digits]), 16, 32)
	if err != nil {
		return
	}
	p.pos += 1 + digits
	if !utf8.ValidRune(rune(n)) {
		n = utf8.RuneError
	}
	b.WriteRune(rune(n))
}

// value reads one value for path, recording its line and byte span.
func (p *parser) value(path Path, line int) {
	start := p.pos
	var d *def
	switch p.peek(0) {
	case '"', '\'':
		p.str()
		d = p.define(path, line, kValue)
	case '[':
		d = p.define(path, line, kArray)
		p.array(path)
	case '{':
		d = p.define(path, line, kInline)
		p.inline(path)
	default:
		p.scalar()
		if p.pos > start {
			d = p.define(path, line, kValue)
		}
	}
	if d != nil {
		d.start, d.end = start, p.pos
	}
}

// str skips a string of any of the four kinds; its content is never keys.
func (p *parser) str() {
	q := p.src[p.pos]
	if p.peek(1) == q && p.peek(2) == q {
		p.pos += 3
		for !p.eof() {
			c := p.src[p.pos]
			if c == '\\' && q == '"' {
				p.advance()
				if !p.eof() {
					p.advance()
				}
				continue
			}
			if c == q && p.peek(1) == q && p.peek(2) == q {
				p.pos += 3
				// Up to two more quotes are content: """a""""" ends after a"".
				for i := 0; i < 2 && p.peek(0) == q; i++ {
					p.pos++
				}
				return
			}
			p.advance()
		}
		return
	}
	p.pos++
	for !p.eof() && p.src[p.pos] != '\n' {
		c := p.src[p.pos]
		p.pos++
		if c == '\\' && q == '"' && !p.eof() && p.src[p.pos] != '\n' {
			p.pos++
		} else if c == q {
			return
		}
	}
}

// array reads [ ... ]; elements are addressed by index, like the decoder.
func (p *parser) array(path Path) {
	p.pos++
	for i := 0; ; {
		p.skipBlank()
		switch p.peek(0) {
		case ']':
			p.pos++
			return
		case ',':
			p.pos++
			continue
		}
		before := p.pos
		if !p.eof() {
			p.value(extend(path, strconv.Itoa(i)), p.line)
		}
		if p.pos == before {
			return // end of input or garbage; the caller skips the line
		}
		i++
	}
}

// inline reads { k = v, ... }; keys get the line where they appear.
func (p *parser) inline(path Path) {
	p.pos++
	for {
		p.skipBlank()
		switch p.peek(0) {
		case '}':
			p.pos++
			return
		case ',':
			p.pos++
			continue
		}
		line := p.line
		keys, ok := p.key()
		if !ok || p.peek(0) != '=' {
			return
		}
		p.pos++
		p.skipSpace()
		before := p.pos
		p.value(p.dotted(path, keys, line), line)
		if p.pos == before {
			return
		}
	}
}

// scalar skips a number, boolean or date-time.
func (p *parser) scalar() {
	start := p.pos
	for !p.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(p.src[p.pos])) {
		p.pos++
		// A date may be followed by a space and a time: 1979-05-27 07:32:00.
		if p.pos-start == 10 && isDate(p.src[start:p.pos]) && p.peek(0) == ' ' &&
			isDigit(p.peek(1)) && isDigit(p.peek(2)) && p.peek(3) == ':' {
			p.pos++
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDate(b []byte) bool {
	for i, c := range b {
		if (i == 4 || i == 7) != (c == '-') || (i != 4 && i != 7 && !isDigit(c)) {
			return false
		}
	}
	return len(b) == 10
}
