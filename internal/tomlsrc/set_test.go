package tomlsrc

import (
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

var readonly = Path{"registry", "storage", "maintenance", "readonly", "enabled"}

func TestSet(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		path    Path
		literal string
		want    string // expected output; empty when wantErr is set
		wantErr string // substring of the expected error
	}{
		{
			name:    "existing key keeps spacing and trailing comment",
			src:     "[server]\n  port  =  80   # http port\nhost = \"h\"\n",
			path:    Path{"server", "port"},
			literal: "8080",
			want:    "[server]\n  port  =  8080   # http port\nhost = \"h\"\n",
		},
		{
			name:    "false to true under its own header",
			src:     "[registry.storage.maintenance.readonly]\nenabled = false\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly]\nenabled = true\n",
		},
		{
			name:    "dotted key under an ancestor table",
			src:     "[registry.storage]\nmaintenance.readonly.enabled = false # ro\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage]\nmaintenance.readonly.enabled = true # ro\n",
		},
		{
			name:    "inline table",
			src:     "[registry.storage]\nmaintenance = { readonly = { enabled = false } }\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage]\nmaintenance = { readonly = { enabled = true } }\n",
		},
		{
			name:    "value inside an array of inline tables",
			src:     "eps = [ {url=\"a\"},\n  {url=\"b\"} ]\n",
			path:    Path{"eps", "1", "url"},
			literal: `"c"`,
			want:    "eps = [ {url=\"a\"},\n  {url=\"c\"} ]\n",
		},
		{
			name:    "array-of-tables element by index",
			src:     "[[n]]\nurl = \"a\"\n[[n]]\nurl = \"b\"\n",
			path:    Path{"n", "1", "url"},
			literal: `"c"`,
			want:    "[[n]]\nurl = \"a\"\n[[n]]\nurl = \"c\"\n",
		},
		{
			name:    "multi-line value replaced whole",
			src:     "a = [\n  1,\n  2,\n] # c\nb = 1\n",
			path:    Path{"a"},
			literal: "[3]",
			want:    "a = [3] # c\nb = 1\n",
		},
		{
			name:    "date-time with a space replaced whole; nan elsewhere survives",
			src:     "n = nan\nt = 1979-05-27 07:32:00-07:00 # c\n",
			path:    Path{"t"},
			literal: "1980-01-01T00:00:00+01:00",
			want:    "n = nan\nt = 1980-01-01T00:00:00+01:00 # c\n",
		},
		{
			name:    "header exists, key absent: insert after last key",
			src:     "[registry.storage.maintenance.readonly]\n  other = 1\n\n# next\n[x]\ny = 2\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly]\n  other = 1\n  enabled = true\n\n# next\n[x]\ny = 2\n",
		},
		{
			name:    "header exists with no keys",
			src:     "[registry.storage.maintenance.readonly] # ro\n# comment\n\n[x]\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly] # ro\nenabled = true\n# comment\n\n[x]\n",
		},
		{
			name:    "header exists, sub-table follows",
			src:     "[a]\nx = 1\n[a.b]\ny = 2\n",
			path:    Path{"a", "z"},
			literal: "3",
			want:    "[a]\nx = 1\nz = 3\n[a.b]\ny = 2\n",
		},
		{
			name:    "array-of-tables element gets a new key",
			src:     "[[n]]\nurl = \"a\"\n\n[[n]]\nurl = \"b\"\n",
			path:    Path{"n", "0", "on"},
			literal: "true",
			want:    "[[n]]\nurl = \"a\"\non = true\n\n[[n]]\nurl = \"b\"\n",
		},
		{
			name:    "root key added after root keys",
			src:     "v = 1\n\n[a]\n",
			path:    Path{"w"},
			literal: "2",
			want:    "v = 1\nw = 2\n\n[a]\n",
		},
		{
			name:    "root key after a byte order mark",
			src:     "\uFEFF[a]\n",
			path:    Path{"w"},
			literal: "2",
			want:    "\uFEFFw = 2\n[a]\n",
		},
		{
			name:    "nothing exists: append",
			src:     "# settings\nversion = 1\n",
			path:    readonly,
			literal: "true",
			want:    "# settings\nversion = 1\n\n[registry.storage.maintenance.readonly]\nenabled = true\n",
		},
		{
			name:    "empty file",
			src:     "",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly]\nenabled = true\n",
		},
		{
			name:    "only a sibling table exists",
			src:     "[registry.storage.filesystem]\nrootdirectory = \"/var/lib/registry\"\n\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.filesystem]\nrootdirectory = \"/var/lib/registry\"\n\n[registry.storage.maintenance.readonly]\nenabled = true\n",
		},
		{
			name:    "keys needing quotes",
			src:     "",
			path:    Path{"a.b", "c d"},
			literal: "1",
			want:    "[\"a.b\"]\n\"c d\" = 1\n",
		},
		{
			name:    "crlf insert",
			src:     "[registry.storage.maintenance.readonly]\r\nother = 1\r\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly]\r\nother = 1\r\nenabled = true\r\n",
		},
		{
			name:    "crlf append",
			src:     "a = 1\r\n",
			path:    readonly,
			literal: "true",
			want:    "a = 1\r\n\r\n[registry.storage.maintenance.readonly]\r\nenabled = true\r\n",
		},
		{
			name:    "crlf replace",
			src:     "[registry.storage.maintenance.readonly]\r\nenabled = false\r\n",
			path:    readonly,
			literal: "true",
			want:    "[registry.storage.maintenance.readonly]\r\nenabled = true\r\n",
		},
		{
			name:    "no final newline: replace",
			src:     "[a]\nx = 1",
			path:    Path{"a", "x"},
			literal: "2",
			want:    "[a]\nx = 2",
		},
		{
			name:    "no final newline: insert",
			src:     "[a]\nx = 1",
			path:    Path{"a", "y"},
			literal: "2",
			want:    "[a]\nx = 1\ny = 2",
		},
		{
			name:    "no final newline: insert under bare header",
			src:     "[a]",
			path:    Path{"a", "y"},
			literal: "2",
			want:    "[a]\ny = 2",
		},
		{
			name:    "no final newline: append",
			src:     "x = 1",
			path:    Path{"t", "k"},
			literal: "true",
			want:    "x = 1\n\n[t]\nk = true",
		},
		{
			name:    "conflict: table defined by dotted keys",
			src:     "[registry]\nstorage.maintenance.other = 1\n",
			path:    readonly,
			literal: "true",
			wantErr: "registry.storage is a table defined by dotted keys on line 2",
		},
		{
			name:    "conflict: inline table",
			src:     "[registry.storage]\nmaintenance = { other = 1 }\n",
			path:    readonly,
			literal: "true",
			wantErr: "registry.storage.maintenance is an inline table on line 2",
		},
		{
			name:    "conflict: path crosses an array of tables",
			src:     "[[registry]]\nx = 1\n",
			path:    readonly,
			literal: "true",
			wantErr: "registry is an array of tables on line 1",
		},
		{
			name:    "conflict: element sub-table would need a header",
			src:     "[[n]]\nx = 1\n",
			path:    Path{"n", "0", "sub", "k"},
			literal: "true",
			wantErr: "n is an array of tables on line 1",
		},
		{
			name:    "conflict: path crosses a value",
			src:     "[registry]\nstorage = \"s3\"\n",
			path:    readonly,
			literal: "true",
			wantErr: "registry.storage is a value on line 2",
		},
		{
			name:    "conflict: path names a table",
			src:     "[registry.storage]\n",
			path:    Path{"registry", "storage"},
			literal: "true",
			wantErr: "registry.storage: it is a table on line 1",
		},
		{
			name:    "original does not parse",
			src:     "[registry\nenabled = false\n",
			path:    readonly,
			literal: "true",
			wantErr: "does not parse",
		},
		{
			name:    "literal is not a value",
			src:     "",
			path:    readonly,
			literal: "tru",
			wantErr: "not a single TOML value",
		},
		{
			name:    "literal with a newline",
			src:     "",
			path:    readonly,
			literal: "true\nx = 1",
			wantErr: "one line",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Set([]byte(tt.src), tt.path, tt.literal)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("got output %q alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			checkDecoded(t, got, tt.path, tt.literal)
		})
	}
}

// checkDecoded independently confirms with BurntSushi that out holds the
// literal's value at path.
func checkDecoded(t *testing.T, out []byte, path Path, literal string) {
	t.Helper()
	var doc, lit map[string]any
	if _, err := toml.Decode(string(out), &doc); err != nil {
		t.Fatalf("result is not valid TOML: %v\n%s", err, out)
	}
	if _, err := toml.Decode("v = "+literal, &lit); err != nil {
		t.Fatal(err)
	}
	var cur any = doc
	for _, seg := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[seg]
		case []map[string]any:
			i, _ := strconv.Atoi(seg)
			cur = c[i]
		case []any:
			i, _ := strconv.Atoi(seg)
			cur = c[i]
		default:
			t.Fatalf("cannot walk %v at %q", path, seg)
		}
	}
	if !equal(cur, lit["v"]) {
		t.Errorf("decoded %v = %#v, want %#v", path, cur, lit["v"])
	}
}

func TestSetKeepsCommentsByteForByte(t *testing.T) {
	src := strings.Join([]string{
		"# regctl settings",
		"#   edited by hand",
		"",
		"version = 1 # schema",
		"",
		"[registry] # the registry",
		"name = \"main\" # \"quoted # hash\"",
		"",
		"  # indented comment",
		"[registry.storage.maintenance.readonly]",
		"# set by registry-readonly",
		"enabled   =   false    # keep me",
		"\t",
		"# trailing comment",
		"[registry.storage.filesystem]",
		"rootdirectory = '''",
		"enabled = false",
		"'''",
		"",
	}, "\n")
	got, err := Set([]byte(src), readonly, "true")
	if err != nil {
		t.Fatal(err)
	}
	before, after := strings.Split(src, "\n"), strings.Split(string(got), "\n")
	if len(before) != len(after) {
		t.Fatalf("line count changed: %d -> %d", len(before), len(after))
	}
	for i := range before {
		want := before[i]
		if i == 11 {
			want = "enabled   =   true    # keep me"
		}
		if after[i] != want {
			t.Errorf("line %d = %q, want %q", i+1, after[i], want)
		}
	}
	checkDecoded(t, got, readonly, "true")
	if line := NewIndex(got).Line(readonly...); line != 12 {
		t.Errorf("Line(readonly) = %d, want 12", line)
	}
}

func TestVerifyRejectsCollateralChange(t *testing.T) {
	// The safety net must catch an edit that changes another key.
	var before map[string]any
	if _, err := toml.Decode("a = 1\nb = 2\n", &before); err != nil {
		t.Fatal(err)
	}
	err := verify(before, []byte("a = 3\nb = 3\n"), Path{"a"}, int64(3))
	if err == nil || !strings.Contains(err.Error(), "other keys") {
		t.Fatalf("err = %v, want collateral-change error", err)
	}
	if err := verify(before, []byte("a = 3\nb = 2\n"), Path{"a"}, int64(3)); err != nil {
		t.Fatalf("valid edit rejected: %v", err)
	}
}
