package tomlsrc

import (
	"strings"
	"testing"
)

func TestReplaceTable(t *testing.T) {
	fsPath := Path{"registry", "storage", "filesystem"}
	s3Path := Path{"registry", "storage", "s3"}
	kvs := []KeyValue{{"bucket", `"b"`}, {"region", `"us-east-1"`}, {"chunksize", "10485760"}}
	tests := []struct {
		name, src, want, wantErr string
	}{
		{
			name: "header table replaced in place, old lines kept as comments",
			src:  "data_dir = \"d\"\n\n[registry.storage.filesystem]\nrootdirectory = \"/srv\" # old\n\n[registry.storage.delete]\nenabled = true\n",
			want: "data_dir = \"d\"\n\n# moved\n# [registry.storage.filesystem]\n# rootdirectory = \"/srv\" # old\n[registry.storage.s3]\nbucket = \"b\"\nregion = \"us-east-1\"\nchunksize = 10485760\n\n[registry.storage.delete]\nenabled = true\n",
		},
		{
			name: "last table without a final newline",
			src:  "[registry.storage.filesystem]\nrootdirectory = \"/srv\"",
			want: "# moved\n# [registry.storage.filesystem]\n# rootdirectory = \"/srv\"\n[registry.storage.s3]\nbucket = \"b\"\nregion = \"us-east-1\"\nchunksize = 10485760\n",
		},
		{
			name: "no table: appended",
			src:  "data_dir = \"d\"\n",
			want: "data_dir = \"d\"\n\n# moved\n[registry.storage.s3]\nbucket = \"b\"\nregion = \"us-east-1\"\nchunksize = 10485760\n",
		},
		{
			name:    "dotted keys are refused",
			src:     "[registry.storage]\nfilesystem.rootdirectory = \"/srv\"\n",
			wantErr: "edit it by hand",
		},
		{
			name:    "inline table is refused",
			src:     "[registry]\nstorage = { filesystem = { rootdirectory = \"/srv\" } }\n",
			wantErr: "edit it by hand",
		},
		{
			name:    "target already there",
			src:     "[registry.storage.s3]\nbucket = \"x\"\n",
			wantErr: "already defined",
		},
		{
			name:    "broken file is not edited",
			src:     "[registry\n",
			wantErr: "does not parse",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceTable([]byte(tt.src), fsPath, s3Path, kvs, "moved")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestLiteral(t *testing.T) {
	for v, want := range map[any]string{
		"a\"b\\c\n": `"a\"b\\c\u000A"`,
		true:        "true",
		int64(42):   "42",
		2.0:         "2.0",
		0.5:         "0.5",
	} {
		got, err := Literal(v)
		if err != nil || got != want {
			t.Errorf("Literal(%#v) = %q, %v; want %q", v, got, err, want)
		}
		if _, err := parseLiteral(got); err != nil {
			t.Errorf("Literal(%#v) = %q does not parse: %v", v, got, err)
		}
	}
	if _, err := Literal(struct{}{}); err == nil {
		t.Error("Literal(struct) succeeded")
	}
}
