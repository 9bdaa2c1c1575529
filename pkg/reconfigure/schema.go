package reconfigure

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

// kind is the TOML shape a key must have.
type kind int

const (
	kString kind = iota
	kBool
	kInt
	kFloat
	kDuration // a string Go's time.ParseDuration accepts
	kStringList
	kTable     // keys listed in node.fields; nil fields means free-form
	kTableList // [[array of tables]], each element shaped like node.elem
	kHeaders   // free-form table of string lists (HTTP headers)
	kPort      // a port number, as an integer or a string (omnibus writes "5005")
)

func (k kind) String() string {
	return [...]string{"a string", "a boolean", "an integer", "a number", "a duration string such as \"500ms\"",
		"an array of strings", "a table", "an array of tables", "a table of string arrays", "a port number"}[k]
}

// node describes one key of the schema.
type node struct {
	kind   kind
	fields map[string]*node
	elem   *node
	// hint explains an unknown key better than a spelling suggestion can.
	hint func(key string) string
	// secret: the value, and everything under it, is never shown, neither
	// in reconfigure's diffs nor in messages.
	secret bool
}

func table(fields map[string]*node) *node { return &node{kind: kTable, fields: fields} }
func leaf(k kind) *node                   { return &node{kind: k} }

// secret marks n secret and returns it.
func secret(n *node) *node {
	n.secret = true
	return n
}

// s3Schema lists the keys of Distribution's s3 driver plus GitLab's
// additions (pathstyle, maxrequestspersecond) and regctl's checksum
// (when_required or when_supported: the SDK's checksum mode). Shared by
// [registry.storage.s3] and [migration.s3].
func s3Schema() *node {
	return table(map[string]*node{
		// The access key is an id, shown in logs and consoles: not secret.
		"accesskey": secret(leaf(kString)), "secretkey": secret(leaf(kString)), "sessiontoken": secret(leaf(kString)),
		"bucket": leaf(kString), "region": leaf(kString), "regionendpoint": leaf(kString),
		"pathstyle": leaf(kBool), "forcepathstyle": leaf(kBool),
		"secure": leaf(kBool), "skipverify": leaf(kBool), "v4auth": leaf(kBool),
		"encrypt": leaf(kBool), "keyid": leaf(kString),
		"chunksize": leaf(kInt), "multipartcopychunksize": leaf(kInt),
		"multipartcopymaxconcurrency": leaf(kInt), "multipartcopythresholdsize": leaf(kInt),
		"maxrequestspersecond": leaf(kInt),
		"rootdirectory":        leaf(kString), "storageclass": leaf(kString), "objectacl": leaf(kString),
		"loglevel": leaf(kString), "useragent": leaf(kString),
		"usedualstack": leaf(kBool), "accelerate": leaf(kBool),
		"checksum": leaf(kString),
	})
}

// storageDrivers are the keys of [registry.storage] that select a driver.
// regctl serve runs filesystem, s3 and inmemory; the others are passed
// through for an external Distribution or GitLab registry.
var storageDrivers = []string{"filesystem", "s3", "inmemory", "azure", "gcs", "swift", "oss"}

// storageSchema is Distribution's storage section.
func storageSchema() *node {
	// Drivers regctl does not run are passed through unchecked, so their
	// keys are unknown: all of their values are secret (an azure
	// connectionstring holds the account key under a name no rule would
	// guess).
	free := secret(table(nil))
	n := table(map[string]*node{
		"filesystem": table(map[string]*node{"rootdirectory": leaf(kString), "maxthreads": leaf(kInt)}),
		"s3":         s3Schema(),
		"inmemory":   table(map[string]*node{}),
		"azure":      free, "gcs": free, "swift": free, "oss": free,
		"delete":   table(map[string]*node{"enabled": leaf(kBool)}),
		"redirect": table(map[string]*node{"disable": leaf(kBool)}),
		"cache":    table(map[string]*node{"blobdescriptor": leaf(kString), "blobdescriptorsize": leaf(kInt)}),
		"tag":      table(map[string]*node{"concurrencylimit": leaf(kInt)}),
		"maintenance": table(map[string]*node{
			"uploadpurging": table(map[string]*node{
				"enabled": leaf(kBool), "age": leaf(kDuration), "interval": leaf(kDuration), "dryrun": leaf(kBool),
			}),
			"readonly": table(map[string]*node{"enabled": leaf(kBool)}),
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

// settingsSchema derives the schema from the Settings struct's toml tags,
// so the struct stays the single list of keys; a field tagged
// secret:"true" is secret.
func settingsSchema() *node {
	root := schemaOf(reflect.TypeOf(Settings{}))
	root.fields["registry"].fields["storage"] = storageSchema()
	root.fields["migration"].fields["s3"] = s3Schema()
	root.fields["registry"].fields["redis"] = redisSchema()
	root.fields["registry"].fields["cluster"].fields["heartbeat"] = leaf(kDuration)
	// Durations are strings in the struct; say so in the schema.
	ep := root.fields["registry"].fields["notifications"].elem
	ep.fields["timeout"] = leaf(kDuration)
	ep.fields["backoff"] = leaf(kDuration)
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
	var walk func(n *node, path []string)
	walk = func(n *node, path []string) {
		switch {
		case n.secret:
			out = append(out, SecretKey{Path: slices.Clone(path), Shape: n.kind.String()})
		case n.kind == kTableList:
			walk(n.elem, append(path, "*"))
		case n.kind == kTable:
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
func (n *node) secretAt(path []string) bool {
	for _, seg := range path {
		if n.secret {
			return true
		}
		if n.kind == kTableList {
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

func schemaOf(t reflect.Type) *node {
	switch {
	case t == durationType:
		return leaf(kDuration)
	case t == headersType:
		return leaf(kHeaders)
	case t == portType:
		return leaf(kPort)
	}
	switch t.Kind() {
	case reflect.String:
		return leaf(kString)
	case reflect.Bool:
		return leaf(kBool)
	case reflect.Int, reflect.Int64:
		return leaf(kInt)
	case reflect.Float64:
		return leaf(kFloat)
	case reflect.Map:
		return table(nil)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return leaf(kStringList)
		}
		return &node{kind: kTableList, elem: schemaOf(t.Elem())}
	case reflect.Struct:
		n := table(map[string]*node{})
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
	panic(fmt.Sprintf("reconfigure: no schema for %s", t))
}

// check walks a decoded TOML value against the schema and reports every
// unknown key and wrong type through report.
func (n *node) check(v any, path []string, report func(path []string, msg string)) {
	switch n.kind {
	case kString:
		if _, ok := v.(string); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case kInt:
		if _, ok := v.(int64); !ok {
			report(path, wrongType(path, n.kind, v))
		}
	case kFloat:
		switch v.(type) {
		case int64, float64:
		default:
			report(path, wrongType(path, n.kind, v))
		}
	case kPort:
		switch v.(type) {
		case int64, string:
		default:
			report(path, wrongType(path, n.kind, v))
		}
	case kDuration:
		s, ok := v.(string)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		if d, err := time.ParseDuration(s); err != nil || d < 0 {
			report(path, fmt.Sprintf("%s is not a duration: use a number with a unit, such as \"500ms\", \"1s\" or \"24h\"", shown(path, s)))
		}
	case kStringList:
		list, ok := v.([]any)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		for i, e := range list {
			if _, ok := e.(string); !ok {
				at := append(path, fmt.Sprint(i))
				report(at, wrongType(at, kString, e))
			}
		}
	case kHeaders:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, wrongType(path, n.kind, v))
			return
		}
		for _, k := range sortedKeys(m) {
			leaf(kStringList).check(m[k], append(path, k), report)
		}
	case kTable:
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
	case kTableList:
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

func wrongType(path []string, want kind, got any) string {
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

func unknownKey(k string, known map[string]*node) string {
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
