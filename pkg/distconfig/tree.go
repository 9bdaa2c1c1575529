package distconfig

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"regctl/internal/redact"
)

// The config is first turned into a small tree of its own (node) rather
// than decoded straight into structs: every value keeps the line it came
// from (or the environment variable that replaced it), which is what both
// the unknown-key warnings and the one-line errors need, and environment
// overrides can be applied to the tree before anything is checked.

type kind uint8

const (
	kindNull kind = iota
	kindScalar
	kindMap
	kindSeq
)

type node struct {
	kind kind
	// Scalars: text is the value as written, without quotes; val is its
	// YAML 1.2 reading: string, bool, int, uint64 (above MaxInt64) or float64.
	text string
	val  any
	// Maps keep file order so errors and warnings come out in that order.
	entries []*entry
	items   []*node
	line    int    // 0 when unknown
	env     string // the environment variable that set this value, if any
}

type entry struct {
	key string
	val *node
}

func (n *node) get(key string) *entry {
	for _, e := range n.entries {
		if e.key == key {
			return e
		}
	}
	return nil
}

func (n *node) remove(key string) {
	out := n.entries[:0]
	for _, e := range n.entries {
		if e.key != key {
			out = append(out, e)
		}
	}
	n.entries = out
}

func (n *node) clone() *node {
	c := *n
	c.entries = make([]*entry, len(n.entries))
	for i, e := range n.entries {
		c.entries[i] = &entry{key: e.key, val: e.val.clone()}
	}
	c.items = make([]*node, len(n.items))
	for i, it := range n.items {
		c.items[i] = it.clone()
	}
	return &c
}

// describe names a value for error messages: the scalar itself, with the
// credentials of a URL hidden, or its shape.
func (n *node) describe() string {
	if n.kind == kindScalar {
		return fmt.Sprintf("%q", redact.URL(n.text))
	}
	return n.describeSecret()
}

// describeSecret names a value that may be a credential (a scalar where
// driver parameters or notification headers belong) by its shape only.
func (n *node) describeSecret() string {
	switch n.kind {
	case kindMap:
		return "a map"
	case kindSeq:
		return "a list"
	case kindNull:
		return "empty"
	}
	return "a single value"
}

// scalarFromToken reads a plain scalar the way YAML 1.2 does (so "yes" is a
// string, not a boolean). Environment values go through here too, which is
// how Distribution reads them: as YAML.
func scalarFromToken(tk *token.Token) *node {
	n := &node{kind: kindScalar, text: tk.Value, val: tk.Value}
	switch tk.Type {
	case token.NullType:
		return &node{kind: kindNull, text: tk.Value}
	case token.BoolType:
		n.val = strings.EqualFold(tk.Value, "true")
	case token.IntegerType, token.BinaryIntegerType, token.OctetIntegerType, token.HexIntegerType:
		n.val = numberValue(tk.Value)
	case token.FloatType:
		if num := token.ToNumber(tk.Value); num != nil {
			n.val = num.Value
		}
	case token.InfinityType:
		n.val = math.Inf(1)
		if strings.HasPrefix(tk.Value, "-") {
			n.val = math.Inf(-1)
		}
	case token.NanType:
		n.val = math.NaN()
	}
	return n
}

// numberValue narrows goccy's int64/uint64 to int when it fits, the type
// driver code will most likely switch on.
func numberValue(text string) any {
	num := token.ToNumber(text)
	if num == nil {
		return text // out of range: keep the text
	}
	switch v := num.Value.(type) {
	case int64:
		return int(v)
	case uint64:
		if v <= math.MaxInt64 {
			return int(v)
		}
		return v
	}
	return num.Value
}

// envScalar is the node an environment variable's value becomes.
func envScalar(name, value string) *node {
	n := scalarFromToken(token.New(value, value, &token.Position{}))
	n.env = name
	return n
}

// syntaxError is a YAML error goccy reports, reduced to one line.
type syntaxError struct {
	line int
	msg  string
}

// parseTree parses the first YAML document of data. It reports whether
// more documents follow, which Distribution silently ignores.
func parseTree(data []byte) (root *node, extraDocs int, serr *syntaxError) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		se := &syntaxError{msg: err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			se.msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				se.line = tk.Position.Line
			}
		}
		se.msg = strings.Join(strings.Fields(se.msg), " ")
		return nil, 0, se
	}
	var docs []ast.Node
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d.Body)
		}
	}
	if len(docs) == 0 {
		return &node{kind: kindNull}, 0, nil
	}
	b := &builder{anchors: map[string]*node{}}
	root, serr = b.build(docs[0])
	return root, len(docs) - 1, serr
}

type builder struct {
	anchors map[string]*node
}

func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func (b *builder) build(n ast.Node) (*node, *syntaxError) {
	switch n := n.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case *ast.NullNode:
		return &node{kind: kindNull, line: lineOf(n)}, nil
	case *ast.StringNode:
		return &node{kind: kindScalar, text: n.Value, val: n.Value, line: lineOf(n)}, nil
	case *ast.LiteralNode:
		s := ""
		if n.Value != nil {
			s = n.Value.Value
		}
		return &node{kind: kindScalar, text: s, val: s, line: lineOf(n)}, nil
	case *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		out := scalarFromToken(n.GetToken())
		out.line = lineOf(n)
		return out, nil
	case *ast.MappingNode:
		return b.mapping(n.Values, lineOf(n))
	case *ast.MappingValueNode:
		// goccy may hand a one-key map over without its MappingNode.
		return b.mapping([]*ast.MappingValueNode{n}, lineOf(n))
	case *ast.SequenceNode:
		out := &node{kind: kindSeq, line: lineOf(n)}
		for _, v := range n.Values {
			item, err := b.build(v)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, item)
		}
		return out, nil
	case *ast.AnchorNode:
		v, err := b.build(n.Value)
		if err != nil {
			return nil, err
		}
		if n.Name != nil {
			b.anchors[n.Name.GetToken().Value] = v
		}
		return v, nil
	case *ast.AliasNode:
		name := ""
		if n.Value != nil {
			name = n.Value.GetToken().Value
		}
		v, ok := b.anchors[name]
		if !ok {
			// Not the name: an unquoted password may start with "*".
			return nil, &syntaxError{line: lineOf(n), msg: "an alias names no anchor defined before it"}
		}
		c := v.clone()
		c.line = lineOf(n)
		return c, nil
	case *ast.TagNode:
		v, err := b.build(n.Value)
		if err != nil {
			return nil, err
		}
		if n.Start != nil && n.Start.Value == "!!str" && v.kind != kindMap && v.kind != kindSeq {
			v.kind, v.val = kindScalar, v.text
		}
		return v, nil
	case *ast.CommentGroupNode, *ast.CommentNode:
		return &node{kind: kindNull, line: lineOf(n)}, nil
	}
	return nil, &syntaxError{line: lineOf(n), msg: fmt.Sprintf("unsupported YAML node %s", n.Type())}
}

// mapping builds a map, applying "<<" merge keys the YAML way: keys written
// in the map win over merged ones, and earlier merge sources over later.
func (b *builder) mapping(values []*ast.MappingValueNode, line int) (*node, *syntaxError) {
	out := &node{kind: kindMap, line: line}
	var merged []*node
	for _, mv := range values {
		v, err := b.build(mv.Value)
		if err != nil {
			return nil, err
		}
		keyLine := lineOf(mv.Key)
		if mv.Key != nil && mv.Key.IsMergeKey() {
			switch v.kind {
			case kindMap:
				merged = append(merged, v)
			case kindSeq:
				for _, it := range v.items {
					if it.kind != kindMap {
						return nil, &syntaxError{line: keyLine, msg: "a << merge list may hold only maps"}
					}
					merged = append(merged, it)
				}
			default:
				return nil, &syntaxError{line: keyLine, msg: "a << merge key needs a map or a list of maps"}
			}
			continue
		}
		k, err := b.build(keyNode(mv.Key))
		if err != nil {
			return nil, err
		}
		if k.kind == kindMap || k.kind == kindSeq {
			return nil, &syntaxError{line: keyLine, msg: "a map key must be a plain value"}
		}
		// A value is located at its key's line: that is where the reader
		// looks, also for a block map or list that starts on the next line.
		if keyLine > 0 {
			v.line = keyLine
		}
		out.entries = append(out.entries, &entry{key: k.text, val: v})
	}
	for _, m := range merged {
		for _, e := range m.entries {
			if out.get(e.key) == nil {
				out.entries = append(out.entries, &entry{key: e.key, val: e.val.clone()})
			}
		}
	}
	return out, nil
}

// keyNode unwraps the explicit "? key" form.
func keyNode(k ast.MapKeyNode) ast.Node {
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		return mk.Value
	}
	return k
}

// toAny turns a subtree into plain Go values (map[string]any, []any,
// scalars) for the sections kept raw.
func toAny(n *node) any {
	switch n.kind {
	case kindMap:
		m := make(map[string]any, len(n.entries))
		for _, e := range n.entries {
			m[e.key] = toAny(e.val)
		}
		return m
	case kindSeq:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = toAny(it)
		}
		return s
	case kindScalar:
		return n.val
	}
	return nil
}
