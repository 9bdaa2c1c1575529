package storage_test

import (
	"context"
	"strings"
	"testing"

	"regctl/pkg/storage"
)

func TestOpenByName(t *testing.T) {
	root := t.TempDir()
	d, err := storage.Open(context.Background(), "filesystem", map[string]any{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "filesystem" {
		t.Fatalf("Name() = %q, want filesystem", d.Name())
	}
	if err := d.PutContent(context.Background(), "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenUnknownNamesKey(t *testing.T) {
	d, err := storage.Open(context.Background(), "azure", nil)
	if err == nil || d != nil {
		t.Fatalf("Open(azure) = %v, %v; want an error", d, err)
	}
	for _, want := range []string{"storage.azure", "filesystem", "s3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestOpenErrorIsUntypedNil(t *testing.T) {
	d, err := storage.Open(context.Background(), "s3", map[string]any{})
	if err == nil {
		t.Fatal("s3 without a bucket opened")
	}
	if d != nil {
		t.Fatalf("Open returned a non-nil driver %#v with its error", d)
	}
}

func TestDriversRegistered(t *testing.T) {
	got := strings.Join(storage.Drivers(), ",")
	if got != "filesystem,s3" {
		t.Fatalf("Drivers() = %s", got)
	}
}

// LocalRoot answers for the filesystem (its rootdirectory, Distribution's
// default when unset) and for no other driver, without opening one.
func TestLocalRoot(t *testing.T) {
	for _, c := range []struct {
		name   string
		params map[string]any
		want   string
		ok     bool
	}{
		{"filesystem", map[string]any{"rootdirectory": "/srv/registry"}, "/srv/registry", true},
		{"filesystem", nil, storage.DefaultFilesystemRoot, true},
		{"s3", map[string]any{"rootdirectory": "/srv/registry"}, "", false},
		{"azure", nil, "", false},
	} {
		if got, ok := storage.LocalRoot(c.name, c.params); got != c.want || ok != c.ok {
			t.Errorf("LocalRoot(%s, %v) = %q, %v; want %q, %v", c.name, c.params, got, ok, c.want, c.ok)
		}
	}
}
