package reconfigure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"regctl/internal/redact"
	"regctl/pkg/settings"
)

// A dry run's diffs show each rendered YAML file with every secret value
// replaced by "<redacted>" and every URL without its credentials, on both
// sides of the diff. Where a file holds secrets is not listed by hand:
// secretPaths learns it from the schema's secret marks and the templates.

// probeValue is what secretPaths sets every secret key to; probeKey names
// the one entry it puts in a table of secrets.
const (
	probeValue = "regctl-secret-probe"
	probeKey   = "regctl-probe-key"
)

// secretPaths maps the role of each rendered file that holds secrets to
// the YAML paths that hold them. In a path, "*" stands for any key or
// array index, and a path covers everything under it. They are learned by
// rendering settings that set every key the schema marks secret to
// probeValue, and keeping the path of every value that holds it.
var secretPaths = sync.OnceValues(func() (map[string][][]string, error) {
	var src bytes.Buffer
	if err := toml.NewEncoder(&src).Encode(probe(settings.Schema())); err != nil {
		return nil, err
	}
	l := &settings.Loaded{Path: "/regctl/regctl.toml", Settings: settings.Defaults()}
	if _, err := toml.Decode(src.String(), &l.Settings); err != nil {
		return nil, err
	}
	files, _, err := Render(l, (&Secrets{}).Effective(&l.Settings.Registry))
	if err != nil {
		return nil, err
	}
	out := map[string][][]string{}
	for _, f := range files {
		if f.Secret || !bytes.Contains(f.Content, []byte(probeValue)) {
			continue
		}
		err := walkYAML(f.Content, func(path []string, value string, _ span) {
			if strings.Contains(value, probeValue) {
				out[f.Role] = append(out[f.Role], pattern(path))
			}
		})
		var text string
		if err == nil {
			text, err = redactYAML(f.Content, out[f.Role])
		}
		// A secret rendered outside a value (a comment, a key) would show.
		if err == nil && strings.Contains(text, probeValue) {
			err = errors.New("a secret is rendered outside a YAML value")
		}
		if err != nil {
			return nil, fmt.Errorf("find the secrets in %s: %w", f.Role, err)
		}
	}
	return out, nil
})

// probe is a settings tree that sets every secret key to probeValue, and
// nothing else.
func probe(n *settings.Node) any {
	switch {
	case n.Secret() && n.Kind() == settings.KString:
		return probeValue
	case n.Secret() && n.Kind() == settings.KHeaders:
		return map[string]any{probeKey: []any{probeValue}}
	case n.Secret() && n.Kind() == settings.KTable && n.Fields() == nil:
		return map[string]any{probeKey: probeValue}
	case n.Secret():
		panic(fmt.Sprintf("reconfigure: cannot find where a secret %s is rendered", n.Kind()))
	case n.Kind() == settings.KTableList:
		if elem, ok := probe(n.Elem()).(map[string]any); ok {
			return []map[string]any{elem}
		}
	case n.Kind() == settings.KTable:
		m := map[string]any{}
		for k, child := range n.Fields() {
			if v := probe(child); v != nil {
				m[k] = v
			}
		}
		if len(m) > 0 {
			return m
		}
	}
	return nil
}

// pattern generalizes the path of a probe value: any array index, and any
// key in place of probeKey, where the path ends (the whole entry is
// secret). A list holding a secret is secret as a whole.
func pattern(path []string) []string {
	var p []string
	for _, seg := range path {
		if seg == probeKey {
			return append(p, "*")
		}
		if isSeqIndex(seg) {
			seg = "*"
		}
		p = append(p, seg)
	}
	for len(p) > 0 && p[len(p)-1] == "*" {
		p = p[:len(p)-1]
	}
	return p
}

func isSecretPath(patterns [][]string, path []string) bool {
	for _, p := range patterns {
		if len(path) >= len(p) && slices.EqualFunc(p, path[:len(p)], func(a, b string) bool { return a == "*" || a == b }) {
			return true
		}
	}
	return false
}

// redactedDiff is the unified diff from old to f's content, with every
// secret hidden, or a note saying why it is not shown.
func redactedDiff(f File, old []byte, created bool) (string, error) {
	if f.Secret {
		return fmt.Sprintf("(secret content of %s not shown)\n", f.Path), nil
	}
	paths, err := secretPaths()
	if err != nil {
		return "", err
	}
	a, b := string(old), string(f.Content)
	// A file no secret reaches (the certificate) is shown as it is.
	if p, ok := paths[f.Role]; ok {
		if a, err = redactYAML(old, p); err == nil {
			b, err = redactYAML(f.Content, p)
		}
		if err != nil {
			return fmt.Sprintf("(diff of %s not shown: %v, so its secrets cannot be hidden)\n", f.Path, err), nil
		}
	}
	if d := unifiedDiff(f.Path, a, b, created); d != "" {
		return d, nil
	}
	return "(only secret values change; not shown)\n", nil
}

// redactYAML replaces, in the text of a YAML file, each value at a secret
// path with "<redacted>" and each URL with one without its credentials.
// The rest of the text, comments and layout included, stays as it is. The
// result is parsed again and must hold exactly the values meant: a value
// that could not be located fully (a block scalar, say) is an error, not
// a leak, and so is a rest of one that would read as a comment.
func redactYAML(src []byte, patterns [][]string) (string, error) {
	type edit struct {
		at   span
		text string
	}
	var edits []edit
	var want []string
	err := walkYAML(src, func(path []string, value string, at span) {
		hidden := redact.URL(value)
		if isSecretPath(patterns, path) {
			hidden = settings.Redacted
		}
		if hidden != value {
			edits = append(edits, edit{at, yamlQuote(hidden)})
		}
		want = append(want, strings.Join(path, "\x00")+"\x00"+hidden)
	})
	if err != nil {
		return "", err
	}
	text := []rune(string(src))
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		if e.at.from > e.at.to || e.at.to > len(text) || (i > 0 && edits[i-1].at.to > e.at.from) {
			return "", errors.New("a value could not be located")
		}
		text = slices.Concat(text[:e.at.from], []rune(e.text), text[e.at.to:])
	}
	var got []string
	err = walkYAML([]byte(string(text)), func(path []string, value string, _ span) {
		got = append(got, strings.Join(path, "\x00")+"\x00"+value)
	})
	if err != nil || !slices.Equal(got, want) || !slices.Equal(comments(string(text)), comments(string(src))) {
		return "", errors.New("a value could not be located")
	}
	return string(text), nil
}

func comments(src string) []string {
	var out []string
	for _, tk := range lexer.Tokenize(src) {
		if tk.Type == token.CommentType {
			out = append(out, tk.Value)
		}
	}
	return out
}

// yamlQuote is a YAML double-quoted scalar (JSON string syntax), with <
// and > kept as they are.
func yamlQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// span is where a scalar's text is in a file: rune offsets, end excluded.
type span struct{ from, to int }

// walkYAML calls fn with the path, value and place of every scalar in a
// YAML file, in file order. A path holds mapping keys and array indexes
// ("[0]"). Aliases and merge keys are refused (a value they take from
// elsewhere has no place of its own), and so are tags, which regctl does
// not write and which put goccy's positions off.
func walkYAML(src []byte, fn func(path []string, value string, at span)) error {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		// Not err itself: its message quotes the file.
		return errors.New("it does not parse as YAML")
	}
	var lineStart []int // rune offset of each line
	off := 0
	for _, line := range strings.SplitAfter(string(src), "\n") {
		lineStart = append(lineStart, off)
		off += utf8.RuneCountInString(line)
	}
	offset := func(line, col int) int {
		if line < 1 || line > len(lineStart) || col < 1 {
			return -1
		}
		return lineStart[line-1] + col - 1
	}
	// end is where text that starts at (line, col) ends.
	end := func(line, col int, text string) int {
		first, rest, multi := strings.Cut(text, "\n")
		if !multi {
			return offset(line, col) + utf8.RuneCountInString(first)
		}
		lines := strings.Split(rest, "\n")
		return offset(line+len(lines), 1) + utf8.RuneCountInString(lines[len(lines)-1])
	}
	var walk func(n ast.Node, path []string) error
	walk = func(n ast.Node, path []string) error {
		switch n := n.(type) {
		case nil, *ast.NullNode, *ast.CommentNode, *ast.CommentGroupNode:
		case *ast.DocumentNode:
			return walk(n.Body, path)
		case *ast.MappingNode:
			for _, v := range n.Values {
				if err := walk(v, path); err != nil {
					return err
				}
			}
		case *ast.MappingValueNode:
			switch n.Key.(type) {
			case *ast.MergeKeyNode, *ast.MappingKeyNode:
				return errors.New("it uses merge or complex keys")
			}
			return walk(n.Value, slices.Concat(path, []string{n.Key.GetToken().Value}))
		case *ast.SequenceNode:
			for i, v := range n.Values {
				if err := walk(v, slices.Concat(path, []string{fmt.Sprintf("[%d]", i)})); err != nil {
					return err
				}
			}
		case *ast.AliasNode, *ast.TagNode:
			return errors.New("it uses aliases or tags")
		case *ast.AnchorNode:
			return walk(n.Value, path)
		case *ast.LiteralNode:
			// From the header (| or >) to the end of the last line of text,
			// which starts on the line after the header.
			hd, body := n.Start.Position, strings.TrimRight(n.Value.GetToken().Origin, " \t\r\n")
			at := span{offset(hd.Line, hd.Column), end(hd.Line, hd.Column, strings.TrimSpace(n.Start.Origin))}
			if body != "" {
				at.to = end(hd.Line, 1, "\n"+body)
			}
			fn(path, n.Value.Value, at)
		case ast.ScalarNode:
			tk := n.GetToken()
			fn(path, tk.Value, span{offset(tk.Position.Line, tk.Position.Column), end(tk.Position.Line, tk.Position.Column, strings.TrimSpace(tk.Origin))})
		default:
			return fmt.Errorf("it holds a YAML %s", n.Type())
		}
		return nil
	}
	for _, doc := range f.Docs {
		if err := walk(doc, nil); err != nil {
			return err
		}
	}
	return nil
}

func isSeqIndex(seg string) bool { return strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]") }
