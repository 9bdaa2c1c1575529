package tomlsrc

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

var fuzzSeeds = []string{
	"",
	"a = 1",
	"[registry.storage.maintenance.readonly]\nenabled = false # c\n",
	"[registry.storage]\nmaintenance = { readonly = { enabled = false } }\n",
	"[registry.storage]\r\nmaintenance.readonly.enabled = false\r\n",
	"[[n]]\nurl = \"a\"\n[n.sub]\nx = 1\n[[n]]\n",
	"eps = [ {url=\"a\"},\n {url=\"b\"} ]\n",
	"s = \"\"\"\n[x]\n\\\"\"\"\"\"\nt = '''\n'''''\n",
	"x = {\n y = [1,\n 2], # c\n}\n",
	"d = 1979-05-27 07:32:00Z\n[\"a.b\" . 'c']\n",
	"[a\n= 1\n\"\\u00\n{ [ ''' \"\"\"",
}

func FuzzIndex(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ix := NewIndex([]byte(src)) // must not panic or hang
		for _, p := range []Path{{"a"}, {"registry", "storage"}, {"n", "0", "url"}, nil} {
			if l := ix.Line(p...); l < 0 || l > strings.Count(src, "\n")+1 {
				t.Fatalf("Line(%v) = %d out of range", p, l)
			}
		}
	})
}

func FuzzSet(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "registry.storage.maintenance.readonly.enabled")
		f.Add(s, "n.0.url")
	}
	f.Fuzz(func(t *testing.T, src, dotted string) {
		path := Path(strings.Split(dotted, "."))
		out, err := Set([]byte(src), path, "true")
		if err != nil {
			return // refusing is fine; a wrong edit is not
		}
		var m map[string]any
		if _, err := toml.Decode(string(out), &m); err != nil {
			t.Fatalf("Set produced invalid TOML: %v\n%q", err, out)
		}
	})
}
