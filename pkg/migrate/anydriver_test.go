package migrate

import (
	"os"
	"path/filepath"
	"testing"

	"regctl/pkg/storage"
)

// plain is a driver without any capability: the copy falls back to
// plain driver calls (Walk, PutContent, Writer, Delete).
type plain struct{ storage.Driver }

// The copy needs nothing of a driver but the Driver interface: into a
// filesystem (with its verified puts, and with no capability at all),
// and out of a bucket, the same sync, resync, verify and --delete hold.
func TestCopyBetweenAnyDrivers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.push("app", "v1", 3000, 2)
	f.push("big", "v1", 3<<20, 1) // above smallFile: streamed
	src := f.sourceFiles()
	f.sync(f.opts()) // into the bucket, the source of the last case

	fsTarget := func() (storage.Driver, string) {
		dir := t.TempDir()
		d, err := storage.NewFilesystem(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d, dir
	}
	for _, c := range []struct {
		name   string
		source storage.Driver // nil: the filesystem fixture
		bare   bool
	}{
		{name: "filesystem to filesystem"},
		{name: "filesystem to a driver without capabilities", bare: true},
		{name: "bucket to filesystem", source: f.target},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, dir := fsTarget()
			var target storage.Driver = d
			if c.bare {
				target = plain{d}
			}
			opts := Options{SourceRoot: f.root, Source: c.source, Target: target}
			r := f.sync(opts)
			if r.Copied != int64(len(src)) || r.Failed != 0 {
				t.Fatalf("copied %d, failed %d; want %d copied: %+v", r.Copied, r.Failed, len(src), r)
			}
			for rel, content := range src {
				got, err := os.ReadFile(filepath.Join(dir, rel))
				if err != nil || string(got) != content {
					t.Errorf("%s: %d bytes, %v; want %d bytes", rel, len(got), err, len(content))
				}
			}
			if vr, err := Verify(t.Context(), opts, VerifyFull); err != nil || !vr.OK() || vr.Checked != int64(len(src)) {
				t.Fatalf("verify: %v %+v", err, vr)
			}
			if r := f.sync(opts); r.Copied != 0 || r.Unchanged != int64(len(src)) {
				t.Fatalf("re-run copied %d, unchanged %d; want 0 and %d", r.Copied, r.Unchanged, len(src))
			}
			orphan := filepath.Join(dir, "docker/registry/v2/repositories/gone/_manifests/tags/x/current/link")
			os.MkdirAll(filepath.Dir(orphan), 0o755)
			os.WriteFile(orphan, []byte("sha256:0"), 0o644)
			opts.Delete = true
			if r := f.sync(opts); r.Deleted != 1 || r.Copied != 0 {
				t.Fatalf("--delete: deleted %d, copied %d; want 1 and 0", r.Deleted, r.Copied)
			}
			if _, err := os.Stat(orphan); !os.IsNotExist(err) {
				t.Errorf("the orphan is still there: %v", err)
			}
		})
	}
}
