package tomlsrc

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestIndexLine(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		lines map[string]int // dotted test path (split on "/") -> line
	}{
		{
			name: "comments and hash inside strings",
			src: "# top comment\n" +
				"title = \"x # not a comment\" # real comment\n" +
				"lit = 'y # nope' # c\n",
			lines: map[string]int{"title": 2, "lit": 3, "missing": 0},
		},
		{
			name: "headers with whitespace and quoted segments",
			src: "[ a . \"b.c\" ]  # hdr\n" +
				"k = 1\n" +
				"[a.'d']\n" +
				"[\"e\\u002Ef\"]\n",
			lines: map[string]int{"a": 1, "a/b.c": 1, "a/b.c/k": 2, "a/d": 3, "e.f": 4, "a/b": 1, "a/zz/k": 1},
		},
		{
			name: "array of tables and sub-tables",
			src: "[[arr]]\n" +
				"name = \"one\"\n" +
				"[arr.sub]\n" +
				"x = 1\n" +
				"[[arr]]\n" +
				"name = \"two\"\n" +
				"[[arr.inner]]\n" +
				"y = 1\n",
			lines: map[string]int{
				"arr": 1, "arr/0": 1, "arr/0/name": 2, "arr/0/sub": 3, "arr/0/sub/x": 4,
				"arr/1": 5, "arr/1/name": 6, "arr/1/inner/0/y": 8, "arr/1/missing": 5, "arr/2/name": 1,
			},
		},
		{
			name: "dotted and quoted keys",
			src: "[t]\n" +
				"a.b.c = 1\n" +
				"a . \"d.e\" = 2\n" +
				"\"quoted key\" = 3\n" +
				"'lit.key' = 4\n",
			lines: map[string]int{"t/a": 2, "t/a/b": 2, "t/a/b/c": 2, "t/a/d.e": 3, "t/quoted key": 4, "t/lit.key": 5},
		},
		{
			name: "inline tables",
			src: "[t]\n" +
				"x = { y = 1, z = { w = 2 } }\n" +
				"m = {\n" + // TOML 1.1 multi-line inline table
				"  n = 1, # c\n" +
				"  o.p = 2,\n" +
				"}\n" +
				"after = 1\n",
			lines: map[string]int{"t/x": 2, "t/x/y": 2, "t/x/z": 2, "t/x/z/w": 2, "t/m": 3, "t/m/n": 4, "t/m/o/p": 5, "t/after": 7},
		},
		{
			name: "multi-line arrays",
			src: "eps = [ {url=\"a\"},\n" +
				"  {url=\"b\"} ]\n" +
				"ports = [\n" +
				"  1, # one ]\n" +
				"  [2, 3],\n" +
				"]\n" +
				"next = 1\n",
			lines: map[string]int{
				"eps": 1, "eps/0/url": 1, "eps/1/url": 2, "eps/1": 2, "ports": 3, "ports/0": 4,
				"ports/1": 5, "ports/1/1": 5, "next": 7,
			},
		},
		{
			name: "multi-line strings are not parsed",
			src: "ml = \"\"\"\n" +
				"not = a key\n" +
				"[not.header]\n" +
				"\\\"\"\" still inside\n" +
				"\"\"\"\n" +
				"lit = '''\n" +
				"[[nope]]\n" +
				"''''\n" +
				"after = true\n" +
				"date = 1979-05-27 07:32:00Z # c\n",
			lines: map[string]int{"ml": 1, "not": 0, "not/header": 0, "lit": 6, "nope": 0, "after": 9, "date": 10},
		},
		{
			name:  "crlf",
			src:   "[a]\r\nb = 1\r\n\r\n[c]\r\nd = { e = 1 }\r\n",
			lines: map[string]int{"a/b": 2, "c": 4, "c/d/e": 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Tests should describe real TOML, so check that first.
			var m map[string]any
			if _, err := toml.Decode(tt.src, &m); err != nil {
				t.Fatalf("test input is not valid TOML: %v", err)
			}
			ix := NewIndex([]byte(tt.src))
			for p, want := range tt.lines {
				if got := ix.Line(strings.Split(p, "/")...); got != want {
					t.Errorf("Line(%q) = %d, want %d", p, got, want)
				}
			}
		})
	}
}

func TestIndexMalformed(t *testing.T) {
	// Garbage must not panic and later valid lines should still be found
	// where the scanner can resynchronise.
	src := "[a\n= 1\nx = \"unterminated\n]]\ny = {\n[b]\nz = 1\n"
	ix := NewIndex([]byte(src))
	if got := ix.Line("a", "x"); got != 0 {
		t.Errorf("Line(a, x) = %d, want 0", got)
	}
	if got := ix.Line("x"); got != 3 {
		t.Errorf("Line(x) = %d, want 3", got)
	}
	if got := ix.Line(); got != 0 {
		t.Errorf("Line() = %d, want 0", got)
	}
}
