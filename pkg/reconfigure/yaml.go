package reconfigure

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"regctl/pkg/settings"
)

// The YAML regctl writes is read by three parsers: goccy/go-yaml
// (regctl serve), Distribution's yaml.v2, and GitLab's Ruby Psych, which
// reads YAML 1.1 (0777 is octal there, "on" a boolean, and U+0085,
// U+2028 and U+2029 break lines). So every string is written
// double-quoted, with every character that is not printable escaped;
// numbers and booleans are written in the one form all three read alike;
// keys are written plain only when they are names no parser reads as
// anything else. After rendering, each file is parsed back and compared
// with what it is meant to say (checkRendered).

// quote writes a YAML double-quoted scalar. Go's escapes (\n, \t, \x1b,
// \u0085, \u2028, ...) are all YAML escapes too, and strconv.Quote
// escapes every character that is not printable, so the value comes back
// byte for byte and the scalar stays on one line.
func quote(v string) string { return strconv.Quote(v) }

// plainKey matches the keys written without quotes.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// yaml11Words are the plain words YAML 1.1 reads as booleans or null.
var yaml11Words = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true, "true": true, "false": true, "null": true}

// maxImplicitKey: YAML allows a key written as "key: value" up to 1024
// characters (libyaml, so Ruby and Distribution, enforce it); a longer
// one is written in the explicit form "? key" newline ": value".
const maxImplicitKey = 1000

func yamlKey(k string) string {
	if plainKey.MatchString(k) && !yaml11Words[strings.ToLower(k)] {
		return k
	}
	return quote(k)
}

// yamlScalar writes a string, boolean or number from the settings.
func yamlScalar(v reflect.Value) (string, error) {
	switch v.Kind() {
	case reflect.String:
		return quote(v.String()), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Float64:
		return yamlFloat(v.Float()), nil
	case reflect.Invalid:
		return "", fmt.Errorf("has no value")
	}
	return "", fmt.Errorf("is a %s, which regctl does not write into YAML: write it as a string", v.Type())
}

// yamlFloat writes a float so that YAML 1.1 reads it as a float too: it
// needs a dot, and the exponent's sign, which Go always writes.
func yamlFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.Contains(s, ".") {
		mant, exp, hasExp := strings.Cut(s, "e")
		s = mant + ".0"
		if hasExp {
			s += "e" + exp
		}
	}
	return s
}

// yamlBlock writes a table or a list from the settings (a storage
// section, headers, redis) as block YAML indented by n spaces, keys
// sorted, for the templates.
func yamlBlock(n int, v any) (string, error) {
	var b strings.Builder
	if err := writeBlock(&b, reflect.ValueOf(v), strings.Repeat(" ", n), nil); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// writeBlock writes the entries of a map, or the items of a list, one a
// line at pad. path names the value in errors.
func writeBlock(b *strings.Builder, v reflect.Value, pad string, path []string) error {
	at := func(seg string) []string { return append(append([]string(nil), path...), seg) }
	if v.Kind() == reflect.Map {
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			if key := yamlKey(k.String()); utf8.RuneCountInString(key) <= maxImplicitKey {
				b.WriteString(pad + key + ":")
			} else {
				b.WriteString(pad + "? " + key + "\n" + pad + ":")
			}
			if err := writeEntry(b, v.MapIndex(k), pad, at(k.String())); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < v.Len(); i++ {
		b.WriteString(pad + "-")
		if err := writeEntry(b, v.Index(i), pad, at(strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

// writeEntry writes what follows "key:" or "-": a scalar, or an empty
// table or list, on the same line; a table or list on the next lines.
func writeEntry(b *strings.Builder, v reflect.Value, pad string, path []string) error {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	switch {
	case v.Kind() == reflect.Map && v.Len() == 0:
		b.WriteString(" {}\n")
	case v.Kind() == reflect.Slice && v.Len() == 0:
		b.WriteString(" []\n")
	case v.Kind() == reflect.Map || v.Kind() == reflect.Slice:
		b.WriteString("\n")
		return writeBlock(b, v, pad+"  ", path)
	default:
		s, err := yamlScalar(v)
		if err != nil {
			return fmt.Errorf("%s %w", settings.KeyString(path), err)
		}
		b.WriteString(" " + s + "\n")
	}
	return nil
}
