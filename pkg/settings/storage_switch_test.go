package settings

import (
	"os"
	"strings"
	"testing"
)

// The cutover's settings edit: the filesystem table becomes an s3 table
// holding [migration.s3]'s keys, every other line stays, and a rollback
// puts the original bytes back.
func TestSwitchStorageToS3AndRestore(t *testing.T) {
	src := `data_dir = "data" # keep me

[registry.storage.filesystem]
rootdirectory = "storage"

[registry.storage.maintenance.readonly]
enabled = true

[migration.s3]
bucket = "b"
region = "us-east-1"
secretkey = "s\"cret"
chunksize = 10485760
pathstyle = true
`
	l := setup(t, src)
	updated, err := SwitchStorageToS3(l, l.Settings.Migration.S3, "moved to s3://b")
	if err != nil {
		t.Fatal(err)
	}
	if d := StorageDriver(updated.Settings.Registry.Storage); d != "s3" {
		t.Fatalf("driver %s", d)
	}
	s3 := updated.Settings.Registry.Storage["s3"].(map[string]any)
	if s3["secretkey"] != `s"cret` || s3["chunksize"] != int64(10485760) || s3["pathstyle"] != true {
		t.Errorf("s3 table = %v", s3)
	}
	got, _ := os.ReadFile(l.Path)
	for _, want := range []string{`data_dir = "data" # keep me`, "# moved to s3://b\n# [registry.storage.filesystem]\n# rootdirectory = \"storage\"\n[registry.storage.s3]\n", "[registry.storage.maintenance.readonly]\nenabled = true"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("edited file lacks %q:\n%s", want, got)
		}
	}
	if _, err := SwitchStorageToS3(updated, l.Settings.Migration.S3, "again"); err == nil {
		t.Error("switching an s3 storage again succeeded")
	}

	restored, err := RestoreSettings(updated, l.Source)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(l.Path); string(got) != src || StorageDriver(restored.Settings.Registry.Storage) != "filesystem" {
		t.Fatalf("restored file:\n%s", got)
	}

	// A file changed behind regctl's back is not overwritten.
	os.WriteFile(l.Path, []byte(src+"# edited\n"), 0o644)
	if _, err := SwitchStorageToS3(restored, l.Settings.Migration.S3, "x"); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("edit over a changed file: %v", err)
	}
}

// A default filesystem storage (no table) gets an s3 table appended.
func TestSwitchStorageToS3FromDefault(t *testing.T) {
	l := setup(t, "data_dir = \"data\"\n[migration.s3]\nbucket = \"b\"\nregion = \"r\"\n")
	updated, err := SwitchStorageToS3(l, l.Settings.Migration.S3, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if d := StorageDriver(updated.Settings.Registry.Storage); d != "s3" {
		t.Fatalf("driver %s", d)
	}
}
