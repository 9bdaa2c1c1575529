package reconfigure

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"regctl/pkg/settings"
)

// hostilePayloads are values that change what unquoted or badly quoted
// YAML means: new keys, other types, lost whitespace, raw control and
// line-break characters (YAML 1.1, GitLab's Ruby, also breaks lines at
// U+0085, U+2028 and U+2029).
var hostilePayloads = []string{
	"x\nevil: 1", "x\r\nevil: 1", "? key", "1e3", ".inf", ".nan", "~", "null", "true", "no", "0x1F", "0777", "1_000",
	"\tleading tab", " leading and trailing ", "#comment", "a #comment", "&anchor", "*alias", "!!tag", "<<",
	"'", "\"", "\\", "%", "@", "`", "a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\u0085b", "a\u2028b", "a\u2029b",
	"\ufeffbom", "ünïcødé ✓ 日本 🐳", "{a: 1}", "[1]", "- x", ":", "a: b", "|", ">", "---", "...",
	strings.Repeat("very long ", 2000),
}

// settingKey is one string a settings file can hold: a leaf of the
// schema, or (asKey) the name of a key in a free-form table.
type settingKey struct {
	path  []string
	kind  settings.Kind
	asKey bool
}

// stringSettings walks the schema for every string it accepts, so that
// a key added to the schema is covered without touching this test.
func stringSettings(n *settings.Node, path []string) []settingKey {
	at := func(seg ...string) []string { return append(append([]string(nil), path...), seg...) }
	switch n.Kind() {
	case settings.KString, settings.KStringList, settings.KDuration, settings.KPort:
		return []settingKey{{path: path, kind: n.Kind()}}
	case settings.KHeaders:
		return []settingKey{{path: at("X-Test"), kind: settings.KStringList}, {path: path, kind: settings.KHeaders, asKey: true}}
	case settings.KTableList:
		return stringSettings(n.Elem(), at("0"))
	case settings.KTable:
		if n.Fields() == nil { // free-form: any key, any value
			return []settingKey{{path: at("param"), kind: settings.KString}, {path: path, kind: settings.KTable, asKey: true}}
		}
		var out []settingKey
		for _, k := range slices.Sorted(maps.Keys(n.Fields())) {
			out = append(out, stringSettings(n.Fields()[k], at(k))...)
		}
		return out
	}
	return nil
}

const marker = "MARKER"

// baseValue is a valid value for a key with marker in it, or "" for the
// keys whose valid values have no room for free text (enumerations,
// durations, ports, PEM): there any payload must be refused.
func baseValue(k settingKey) string {
	name := k.path[len(k.path)-1]
	switch {
	case k.kind == settings.KDuration || k.kind == settings.KPort:
		return ""
	case name == "log_level" || name == "log_formatter" || name == "checksum" || name == "blobdescriptor" ||
		name == "older_than" || name == "internal_key" || name == "internal_certificate":
		return ""
	case strings.HasSuffix(name, "url") || name == "token_realm" || name == "regionendpoint":
		return "https://h.example/" + marker
	case strings.HasSuffix(name, "addr") || name == "addrs":
		return marker + ":5000"
	}
	return marker
}

// settingsWith is a settings file that sets k to v, plus what k needs
// beside it to be valid (an endpoint's name and url, a bucket, ...).
func settingsWith(t *testing.T, k settingKey, v string) []byte {
	t.Helper()
	root := map[string]any{}
	set := func(path []string, val any) {
		cur := root
		for i, seg := range path[:len(path)-1] {
			if path[i+1] == "0" { // an array of tables: its one element
				if _, ok := cur[seg]; !ok {
					cur[seg] = []map[string]any{{}}
				}
				cur = cur[seg].([]map[string]any)[0]
				continue
			}
			if seg == "0" {
				continue
			}
			if _, ok := cur[seg]; !ok {
				cur[seg] = map[string]any{}
			}
			cur = cur[seg].(map[string]any)
		}
		if _, ok := cur[path[len(path)-1]]; !ok {
			cur[path[len(path)-1]] = val
		}
	}
	switch {
	case k.asKey && k.kind == settings.KHeaders:
		set(append(k.path, v), []string{"value"})
	case k.asKey:
		set(append(k.path, v), "value")
	case k.kind == settings.KStringList:
		set(k.path, []string{v})
	default:
		set(k.path, v)
	}
	parent := strings.Join(k.path[:len(k.path)-1], ".")
	switch {
	case strings.HasPrefix(parent, "registry.notifications.0"):
		set([]string{"registry", "notifications", "0", "name"}, "n")
		set([]string{"registry", "notifications", "0", "url"}, "https://h.example/hook")
	case strings.HasPrefix(parent, "registry.cleanup_policies.0"):
		set([]string{"registry", "cleanup_policies", "0", "name"}, "p")
		set([]string{"registry", "cleanup_policies", "0", "repositories"}, []string{"g/**"})
	case strings.HasSuffix(parent, "s3"):
		set(append(k.path[:len(k.path)-1:len(k.path)-1], "bucket"), "b")
		set(append(k.path[:len(k.path)-1:len(k.path)-1], "region"), "r")
		if k.path[len(k.path)-1] == "keyid" {
			set(append(k.path[:len(k.path)-1:len(k.path)-1], "encrypt"), true)
		}
	case parent == "registry.redis.tls":
		set([]string{"registry", "redis", "tls", "certificate"}, "c.pem")
		set([]string{"registry", "redis", "tls", "key"}, "k.pem")
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(root); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// renderTrees renders src and parses config.yml and gitlab.yml back
// with the YAML library, checking the form of every file on the way.
func renderTrees(t *testing.T, src []byte) (map[string]any, error) {
	t.Helper()
	l, err := settings.Parse(scenarioSettingsPath, src)
	if err != nil {
		return nil, err
	}
	files, _, err := Render(l, effectiveFixed(l))
	if err != nil {
		t.Fatalf("render: %v\nsettings:\n%s", err, src)
	}
	trees := map[string]any{}
	for _, f := range files {
		if f.Role != "config.yml" && f.Role != "gitlab.yml" {
			continue
		}
		checkYAMLForm(t, f.Role, f.Content)
		var tree any
		if err := yaml.Unmarshal(f.Content, &tree); err != nil {
			t.Fatalf("%s does not parse back: %v\nsettings:\n%s", f.Role, err, src)
		}
		trees[f.Role] = tree
	}
	return trees, nil
}

var safeKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// checkYAMLForm checks the rendered text itself: every character is
// printable (or a newline), every string value is double-quoted, and
// every plain key is a name no YAML 1.1 parser reads as anything else.
func checkYAMLForm(t *testing.T, name string, content []byte) {
	t.Helper()
	for i, r := range string(content) {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("%s: raw %U at byte %d", name, r, i)
		}
	}
	f, err := parser.ParseBytes(content, 0)
	if err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	names := map[ast.Node]bool{} // keys, and the template's anchor
	var walk visitor = func(n ast.Node) {
		switch n := n.(type) {
		case *ast.MappingValueNode:
			names[n.Key] = true
		case *ast.AnchorNode:
			names[n.Name] = true
		case *ast.StringNode:
			if names[n] && utf8.RuneCountInString(strconv.Quote(n.Value)) > 1024 {
				t.Fatalf("%s: a key of %d characters at line %d is too long for YAML's key: value form", name, len(n.Value), n.Token.Position.Line)
			}
			plain := n.Token.Type != token.DoubleQuoteType
			if plain && !(names[n] && safeKey.MatchString(n.Value) && !yaml11Word[strings.ToLower(n.Value)]) {
				t.Fatalf("%s: %q is not double-quoted (line %d)", name, n.Value, n.Token.Position.Line)
			}
		case *ast.MappingKeyNode: // "? key" for a key too long to be implicit
			if k, ok := n.Value.(*ast.StringNode); !ok || len(k.Value) < maxImplicitKey {
				t.Fatalf("%s: explicit key at line %d", name, n.GetToken().Position.Line)
			}
		case *ast.TagNode, *ast.AliasNode, *ast.NullNode, *ast.LiteralNode:
			t.Fatalf("%s: unexpected %s at line %d", name, n.Type(), n.GetToken().Position.Line)
		}
	}
	for _, doc := range f.Docs {
		ast.Walk(walk, doc)
	}
}

type visitor func(ast.Node)

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if n != nil {
		v(n)
	}
	return v
}

// yaml11Word are the plain words YAML 1.1 reads as booleans or null.
var yaml11Word = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true, "true": true, "false": true, "null": true}

// substitute replaces marker with payload in every string and key.
func substitute(v any, payload string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, marker, payload)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ReplaceAll(k, marker, payload)] = substitute(e, payload)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, payload)
		}
		return out
	}
	return v
}

// TestEveryStringSettingRendersExactly: for every string the settings
// accept and every hostile payload, either validation refuses the value
// naming its key, or config.yml and gitlab.yml parse back to what they
// hold with a harmless value in its place, the payload standing where
// that value stood: same keys, same types, the payload byte for byte.
func TestEveryStringSettingRendersExactly(t *testing.T) {
	keys := stringSettings(settings.Schema(), nil)
	if len(keys) < 60 {
		t.Fatalf("the schema walk found only %d string settings", len(keys))
	}
	for _, k := range keys {
		key := settings.KeyString(k.path)
		if k.asKey {
			key += ".<key>"
		}
		t.Run(key, func(t *testing.T) {
			base := baseValue(k)
			var want map[string]any
			if base != "" {
				var err error
				if want, err = renderTrees(t, settingsWith(t, k, base)); err != nil {
					t.Fatalf("the harmless value %q is refused: %v", base, err)
				}
			}
			for _, payload := range hostilePayloads {
				value := strings.ReplaceAll(base, marker, payload)
				if base == "" {
					value = payload
				}
				src := settingsWith(t, k, value)
				got, err := renderTrees(t, src)
				if err != nil {
					if !namesKey(err, settings.KeyString(k.path)) {
						t.Errorf("%q refused without naming %s: %v", payload, settings.KeyString(k.path), err)
					}
					continue
				}
				if base == "" {
					if n, err := strconv.Atoi(payload); err != nil || k.kind != settings.KPort || !sameTree(gitlabPort(got), uint64(n)) {
						t.Errorf("%q accepted, want it refused (or a port written as a number)", payload)
					}
					continue
				}
				if w := substitute(want, payload); !sameTree(w, got) {
					t.Errorf("%q does not render as itself:\nwant %#v\n got %#v\nsettings:\n%s", payload, w, got, src)
				}
			}
		})
	}
}

func gitlabPort(trees map[string]any) any {
	prod, _ := trees["gitlab.yml"].(map[string]any)["production"].(map[string]any)
	reg, _ := prod["registry"].(map[string]any)
	return reg["port"]
}

// namesKey reports whether err is invalid settings with a problem at
// key or below it.
func namesKey(err error, key string) bool {
	var inv *settings.InvalidError
	if !errors.As(err, &inv) {
		return false
	}
	for _, p := range inv.Problems() {
		if p.Key == key || strings.HasPrefix(p.Key, key+".") || strings.HasPrefix(p.Key, key+"[") {
			return true
		}
	}
	return false
}

// sameTree reports whether two trees are equal, NaN equal to itself.
func sameTree(a, b any) bool { return compareTree(nil, a, b) == nil }

// TestFreeFormValuesKeepTheirTypes: numbers, booleans and floats in the
// free-form tables stay what TOML says they are, inf and nan included.
func TestFreeFormValuesKeepTheirTypes(t *testing.T) {
	src := `[registry.storage.azure]
n = 1000
neg = -5
f = 1.5
big = 1e300
whole = 3.0
inf = inf
nan = nan
b = true
list = ["a", 1]
sub = { "1e3" = "x", on = "y", "a b" = 2 }
`
	trees, err := renderTrees(t, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	azure := trees["config.yml"].(map[string]any)["storage"].(map[string]any)["azure"].(map[string]any)
	want := map[string]any{
		"n": uint64(1000), "neg": int64(-5), "f": 1.5, "big": 1e300, "whole": 3.0, "inf": math.Inf(1), "nan": math.NaN(),
		"b": true, "list": []any{"a", uint64(1)}, "sub": map[string]any{"1e3": "x", "on": "y", "a b": uint64(2)},
	}
	if !sameTree(want, azure) {
		t.Errorf("storage.azure = %#v\nwant %#v", azure, want)
	}
}

func TestStringSettingsWalkSeesFreeFormAndLists(t *testing.T) {
	var got []string
	for _, k := range stringSettings(settings.Schema(), nil) {
		got = append(got, fmt.Sprintf("%v %s", k.asKey, settings.KeyString(k.path)))
	}
	for _, want := range []string{
		"false data_dir", "false registry.storage.azure.param", "true registry.storage.azure",
		"false registry.notifications[0].headers.X-Test", "true registry.notifications[0].headers",
		"false registry.redis.addrs", "false gitlab_rails.registry_port", "false registry.storage.filesystem.rootdirectory",
	} {
		if !strings.Contains(strings.Join(got, "\n")+"\n", want+"\n") {
			t.Errorf("the schema walk misses %s", want)
		}
	}
}

// A port is written as a number without leading zeros: YAML 1.1
// (GitLab's Ruby) reads a plain 05050 as octal, port 2600.
func TestPortRenderedCanonically(t *testing.T) {
	for _, src := range []string{
		"[gitlab_rails]\nregistry_port = \"05050\"\n",
		"[gitlab_rails]\nregistry_port = \"+5050\"\n",
		"[gitlab_rails]\nregistry_port = 5050\n",
		"registry_external_url = \"https://registry.example.com:05050\"\n",
	} {
		l, err := settings.Parse(scenarioSettingsPath, []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		_, gl := renderFiles(t, l)
		if !strings.Contains(gl, "\n    port: 5050\n") {
			t.Errorf("%s: gitlab.yml has no \"port: 5050\":\n%s", src, gl)
		}
	}
	for _, bad := range []string{`"5050x"`, `"0"`, `"65536"`, `-1`, `" 5050"`, `"0x13BA"`, `"5e3"`} {
		src := "[gitlab_rails]\nregistry_port = " + bad + "\n"
		if _, err := settings.Parse(scenarioSettingsPath, []byte(src)); !namesKey(err, "gitlab_rails.registry_port") {
			t.Errorf("%s: err = %v, want a problem at gitlab_rails.registry_port", src, err)
		}
	}
}

// renderFiles renders validated settings and returns config.yml (""
// on a GitLab-only node) and gitlab.yml.
func renderFiles(t *testing.T, l *settings.Loaded) (config, gitlab string) {
	t.Helper()
	files, _, err := Render(l, effectiveFixed(l))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		switch f.Role {
		case "config.yml":
			config = string(f.Content)
		case "gitlab.yml":
			gitlab = string(f.Content)
		}
	}
	return config, gitlab
}

// The settings file's path goes into a comment of both files: a newline
// in it must not end the comment and add keys. (Parse refuses such a
// path; the comment is escaped anyway.)
func TestSettingsPathCannotAddKeys(t *testing.T) {
	l, err := settings.Parse(scenarioSettingsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Path = "/etc/regctl\nevil: 1\r\nhttp: {}\u2028#/regctl.toml"
	config, gitlab := renderFiles(t, l)
	for name, content := range map[string]string{"config.yml": config, "gitlab.yml": gitlab} {
		checkYAMLForm(t, name, []byte(content))
		var tree map[string]any
		if err := yaml.Unmarshal([]byte(content), &tree); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := tree["evil"]; ok {
			t.Errorf("%s: the settings path added a key:\n%s", name, content)
		}
	}

}

// checkRendered refuses a file that does not parse back to its intended
// tree, naming the file and the first differing key, never the value.
func TestCheckRenderedNamesFileAndKey(t *testing.T) {
	want := map[string]any{"a": map[string]any{"s": "1e3", "n": 3, "l": []string{"x"}}, "t": "\tsecret"}
	for _, tc := range []struct{ yaml, key string }{
		{"a:\n  s: \"1e3\"\n  n: 3\n  l: [\"x\"]\nt: \"\\tsecret\"\n", ""},
		{"a:\n  s: .inf\n  n: 3\n  l: [\"x\"]\nt: \"\\tsecret\"\n", "a.s: is a number, want a string"},
		{"a:\n  s: \"1e3\"\n  n: \"3\"\n  l: [\"x\"]\nt: \"\\tsecret\"\n", "a.n: is a string, want a number"},
		{"a:\n  s: \"1e3\"\n  n: 3\n  l: [\"x\"]\nevil: 1\nt: \"\\tsecret\"\n", "evil: a key the settings do not make"},
		{"a:\n  s: \"1e3\"\n  l: [\"x\"]\nt: \"\\tsecret\"\n", "a.n: missing"},
		{"a:\n  s: \"1e3\"\n  n: 3\n  l: [\"x\", \"y\"]\nt: \"\\tsecret\"\n", "a.l: is a list, want a list of 1"},
		{"a:\n  s: \"1e3\"\n  n: 3\n  l: [\"x\"]\nt:\tsecret\n", "t: is not the string the settings give"},
		{"a:\n  s: ? key\n  n: 3\n", "does not parse back"},
	} {
		err := checkRendered("/x/config.yml", []byte(tc.yaml), want)
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.key != "" && (err == nil || !strings.Contains(err.Error(), "/x/config.yml") || !strings.Contains(err.Error(), tc.key)):
			t.Errorf("%q: err = %v, want one naming /x/config.yml and %q", tc.yaml, err, tc.key)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%q: the error shows a value: %v", tc.yaml, err)
		}
	}
}
