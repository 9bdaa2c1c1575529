package settings

import (
	"fmt"
	"maps"
	"reflect"
	"regctl/internal/suggest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is the TOML shape a key must have.
type Kind int

const (
	KString Kind = iota
	KBool
	KInt
	KFloat
	KDuration // a string Go's time.ParseDuration accepts
	KStringList
	KTable     // keys listed in node.fields; nil fields means free-form
	KTableList // [[array of tables]], each element shaped like node.elem
	KHeaders   // free-form table of string lists (HTTP headers)
	KPort      // a port number, as an integer or a string (omnibus writes "5005")
)

func (k Kind) String() string {
	return [...]string{"a string", "a boolean", "an integer", "a number", "a duration string such as \"500ms\"",
		"an array of strings", "a table", "an array of tables", "a table of string arrays", "a port number"}[k]
}

// Node describes one key of the schema.
type Node struct {
	kind   Kind
	fields map[string]*Node
	elem   *Node
	// hint explains an unknown key better than a spelling suggestion can.
	hint func(key string) string
	// secret: the value, and everything under it, is never shown, neither
	// in reconfigure's diffs nor in messages.
	secret bool
}

func table(fields map[string]*Node) *Node { return &Node{kind: KTable, fields: fields} }
func leaf(k Kind) *Node                   { return &Node{kind: k} }

// secret marks n secret and returns it.
func secret(n *Node) *Node {
	n.secret = true
	return n
}

// s3Schema lists the keys of Distribution's s3 driver plus GitLab's
// additions (pathstyle, maxrequestspersecond) and regctl's checksum
// (when_required or when_supported: the SDK's checksum mode). Shared by
// [registry.storage.s3] and [migration.s3].
func s3Schema() *Node {
	return table(map[string]*Node{
		// The access key is an id, shown in logs and consoles: not secret.
		"accesskey": secret(leaf(KString)), "secretkey": secret(leaf(KString)), "sessiontoken": secret(leaf(KString)),
		"bucket": leaf(KString), "region": leaf(KString), "regionendpoint": leaf(KString),
		"pathstyle": leaf(KBool), "forcepathstyle": leaf(KBool),
		"secure": leaf(KBool), "skipverify": leaf(KBool), "v4auth": leaf(KBool),
		"encrypt": leaf(KBool), "keyid": leaf(KString),
		"chunksize": leaf(KInt), "multipartcopychunksize": leaf(KInt),
		"multipartcopymaxconcurrency": leaf(KInt), "multipartcopythresholdsize": leaf(KInt),
		"maxrequestspersecond": leaf(KInt),
		"rootdirectory":        leaf(KString), "storageclass": leaf(KString), "objectacl": leaf(KString),
		"loglevel": leaf(KString), "useragent": leaf(KString),
		"usedualstack": leaf(KBool), "accelerate": leaf(KBool),
		"checksum": leaf(KString),
	})
}

// storageDrivers are the keys of [registry.storage] that select a driver.
// regctl serve runs filesystem, s3 and inmemory; the others are passed
// through for an external Distribution or GitLab registry.
var storageDrivers = []string{"filesystem", "s3", "inmemory", "azure", "gcs", "swift", "oss"}

// storageSchema is Distribution's storage section.
func storageSchema() *Node {
	// Drivers regctl does not run are passed through unchecked, so their
	// keys are unknown: all of their values are secret (an azure
	// connectionstring holds the account key under a name no rule would
	// guess).
	free := secret(table(nil))
	n := table(map[string]*Node{
		"filesystem": table(map[string]*Node{"rootdirectory": leaf(KString), "maxthreads": leaf(KInt)}),
		"s3":         s3Schema(),
		"inmemory":   table(map[string]*Node{}),
		"azure":      free, "gcs": free, "swift": free, "oss": free,
		"delete":   table(map[string]*Node{"enabled": leaf(KBool)}),
		"redirect": table(map[string]*Node{"disable": leaf(KBool)}),
		"cache":    table(map[string]*Node{"blobdescriptor": leaf(KString), "blobdescriptorsize": leaf(KInt)}),
		"tag":      table(map[string]*Node{"concurrencylimit": leaf(KInt)}),
		"maintenance": table(map[string]*Node{
			"uploadpurging": table(map[string]*Node{
				"enabled": leaf(KBool), "age": leaf(KDuration), "interval": leaf(KDuration), "dryrun": leaf(KBool),
			}),
			"readonly": table(map[string]*Node{"enabled": leaf(KBool)}),
		}),
	})
	// A driver option written straight under [registry.storage] means the
	// driver table was forgotten: say that, not "did you mean".
	n.hint = func(key string) string {
		for _, d := range []string{"s3", "filesystem"} {
			if _, ok := n.fields[d].fields[key]; ok {
				return fmt.Sprintf("%q is a %s driver option, but this storage section names no driver: put it under [registry.storage.%s]", key, d, d)
			}
		}
		return ""
	}
	return n
}

// schema is the settings schema, built once.
var schema = sync.OnceValue(settingsSchema)

// Schema is the shape of regctl.toml, built afresh for the caller: what
// the renderer walks to learn where secrets go, and tests to reach every
// key.
func Schema() *Node { return settingsSchema() }

// Kind is what the key holds.
func (n *Node) Kind() Kind { return n.kind }

// Fields are a table's keys; nil for a free-form table and for a leaf.
func (n *Node) Fields() map[string]*Node { return n.fields }

// Elem is the shape of each element of an array of tables.
func (n *Node) Elem() *Node { return n.elem }

// Secret reports whether the value, and everything under it, is never shown.
func (n *Node) Secret() bool { return n.secret }

// settingsSchema derives the schema from the Settings struct's toml tags,
// so the struct stays the single list of keys; a field tagged
// secret:"true" is secret.
func settingsSchema() *Node {
	root := schemaOf(reflect.TypeOf(Settings{}))
	root.fields["registry"].fields["storage"] = storageSchema()
	root.fields["migration"].fields["s3"] = s3Schema()
	root.fields["registry"].fields["redis"] = redisSchema()
	root.fields["registry"].fields["cluster"].fields["heartbeat"] = leaf(KDuration)
	// Durations are strings in the struct; say so in the schema.
	ep := root.fields["registry"].fields["notifications"].elem
	ep.fields["timeout"] = leaf(KDuration)
	ep.fields["backoff"] = leaf(KDuration)
	return root
}

// SecretKey is a settings key whose value is never shown: not in
// reconfigure's diffs, not in messages.
type SecretKey struct {
	// Path names the key; "*" stands for any element of an array of tables.
	Path []string
	// Shape is what the key holds, as messages say it: "a string", or a
	// table whose every value is secret ("a table of string arrays" for
	// HTTP headers, "a table" for a driver's free-form parameters).
	Shape string
}

// SecretKeys lists every key the schema marks secret.
func SecretKeys() []SecretKey {
	var out []SecretKey
	var walk func(n *Node, path []string)
	walk = func(n *Node, path []string) {
		switch {
		case n.secret:
			out = append(out, SecretKey{Path: slices.Clone(path), Shape: n.kind.String()})
		case n.kind == KTableList:
			walk(n.elem, append(path, "*"))
		case n.kind == KTable:
			for _, k := range slices.Sorted(maps.Keys(n.fields)) {
				walk(n.fields[k], append(path, k))
			}
		}
	}
	walk(schema(), nil)
	return out
}

// secretAt reports whether the key at path is secret or lies in a table
// that is. Array indexes may be left out of path: TOML's syntax errors
// name keys without them.
func (n *Node) secretAt(path []string) bool {
	for _, seg := range path {
		if n.secret {
			return true
		}
		if n.kind == KTableList {
			n = n.elem
			if isIndex(seg) {
				continue
			}
		}
		if n = n.fields[seg]; n == nil {
			return false
		}
	}
	return n.secret
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	headersType  = reflect.TypeOf(map[string][]string{})
	portType     = reflect.TypeOf(Port(""))
)

func schemaOf(t reflect.Type) *Node {
	switch {
	case t == durationType:
		return leaf(KDuration)
	case t == headersType:
		return leaf(KHeaders)
	case t == portType:
		return leaf(KPort)
	}
	switch t.Kind() {
	case reflect.String:
		return leaf(KString)
	case reflect.Bool:
		return leaf(KBool)
	case reflect.Int, reflect.Int64:
		return leaf(KInt)
	case reflect.Float64:
		return leaf(KFloat)
	case reflect.Map:
		return table(nil)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return leaf(KStringList)
		}
		return &Node{kind: KTableList, elem: schemaOf(t.Elem())}
	case reflect.Struct:
		n := table(map[string]*Node{})
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			n.fields[name] = schemaOf(f.Type)
			n.fields[name].secret = f.Tag.Get("secret") == "true"
		}
		return n
	}
	panic(fmt.Sprintf("settings: no schema for %s", t))
}

// check walks a decoded TOML value against the schema and reports every
// unknown key and wrong type through report.
func (n *Node) check(v any, path []string, report func(path []string, msg string)) {
	switch n.kind {
	case KString:
		if _, ok := v.(string); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case KBool:
		if _, ok := v.(bool); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case KInt:
		if _, ok := v.(int64); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case KFloat:
		switch v.(type) {
		case int64, float64:
		default:
			report(path, wrongType(path, n.kind, v))
		}
	case KPort:
		switch v.(type) {
		case int64, string:
		default:
			report(path, wrongType(path, n.kind, v))
		}
	case KDuration:
		s, ok := v.(string)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		if d, err := time.ParseDuration(s); err != nil || d < 0 {
			report(path, fmt.Sprintf("%s is not a duration: use a number with a unit, such as \"500ms\", \"1s\" or \"24h\"", shown(path, s)))
		}
	case KStringList:
		list, ok := v.([]any)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		for i, e := range list {
			if _, ok := e.(string); !ok {
				at := append(path, fmt.Sprint(i))
				report(at, wrongType(at, KString, e))
			}
		}
	case KHeaders:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		for _, k := range sortedKeys(m) {
			leaf(KStringList).check(m[k], append(path, k), report)
		}
	case KTable:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		if n.fields == nil {
			return
		}
		for _, k := range sortedKeys(m) {
			child, known := n.fields[k]
			if !known {
				msg := ""
				if n.hint != nil {
					msg = n.hint(k)
				}
				if msg == "" {
					msg = unknownKey(k, n.fields)
				}
				report(append(path, k), msg)
				continue
			}
			child.check(m[k], append(path, k), report)
		}
	case KTableList:
		list, ok := asTableList(v)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		for i, e := range list {
			n.elem.check(e, append(path, fmt.Sprint(i)), report)
		}
	}
}

// asTableList accepts both [[x]] tables and x = [{...}, {...}].
func asTableList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []map[string]any:
		out := make([]any, len(l))
		for i := range l {
			out[i] = l[i]
		}
		return out, true
	case []any:
		return l, true
	}
	return nil, false
}

func wrongType(path []string, want Kind, got any) string {
	return fmt.Sprintf("must be %s, not %s", want, tomlTypeName(path, got))
}

// tomlTypeName names the value of the key at path by its type and value
// ("the integer 5"), or by its type only ("an integer") when it is secret.
func tomlTypeName(path []string, v any) string {
	var article, name string
	switch v.(type) {
	case string:
		article, name = "a", "string"
	case bool:
		article, name = "a", "boolean"
	case int64:
		article, name = "an", "integer"
	case float64:
		article, name = "a", "number"
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	case time.Time:
		return "a date"
	default:
		return fmt.Sprintf("a %T", v)
	}
	if schema().secretAt(path) {
		return article + " " + name
	}
	return "the " + name + " " + shown(path, v)
}

func unknownKey(k string, known map[string]*Node) string {
	names := make([]string, 0, len(known))
	for name := range known {
		names = append(names, name)
	}
	if s := nearest(k, names); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	sort.Strings(names)
	return fmt.Sprintf("unknown key (known keys here: %s)", strings.Join(names, ", "))
}

// nearest returns the known name closest to k, when it is close enough
// to be a likely typo.
func nearest(k string, names []string) string { return suggest.Nearest(k, names) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
