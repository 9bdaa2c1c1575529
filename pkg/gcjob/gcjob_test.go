package gcjob

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/distconfig"
	"regctl/pkg/gc"
	"regctl/pkg/gcreport"
	"regctl/pkg/maintenance"
	"regctl/pkg/storage"
)

// site is a storage holding one blob nothing references.
func site(t *testing.T) (storage.Driver, distconfig.Storage, digest.Digest) {
	t.Helper()
	root := t.TempDir()
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	orphan := digest.FromString("an orphan layer")
	if err := d.PutContent(t.Context(), storage.BlobDataPath(orphan), []byte("an orphan layer")); err != nil {
		t.Fatal(err)
	}
	return d, distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": root}}, orphan
}

// A run collects under the lease and the run lock, flushes the cache
// after the collector, records its figures before the daemons take
// writes again, and leaves nothing held.
func TestRunCollectsUnderTheJob(t *testing.T) {
	d, st, orphan := site(t)
	var steps []string
	res, err := Run(t.Context(), d, Options{
		Storage:   st,
		Heartbeat: 100 * time.Millisecond,
		FlushAfter: func(ctx context.Context, work func(context.Context) error) (int, error) {
			err := work(ctx)
			if cur, _ := maintenance.Current(ctx, d); cur == nil || cur.Reason != "garbage collection" {
				t.Errorf("flushing without the lease: %+v", cur)
			}
			steps = append(steps, "flush")
			return 3, err
		},
		OnReadOnly: func(w maintenance.WaitResult) { steps = append(steps, "read-only") },
		Collected:  func() { steps = append(steps, "collected") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report == nil || res.Report.BlobsDeleted != 1 || res.CacheFlushed != 3 || res.Daemons == nil || *res.Daemons != 0 {
		t.Errorf("result %+v", res)
	}
	if want := "read-only collected flush"; strings.Join(steps, " ") != want {
		t.Errorf("steps %q, want %q", strings.Join(steps, " "), want)
	}
	if _, err := d.Stat(t.Context(), storage.BlobDataPath(orphan)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the orphan blob is still there: %v", err)
	}
	last, err := gcreport.Read(t.Context(), d)
	if err != nil || last.Run == nil || !last.Run.Success || last.Run.BlobsDeleted != 1 {
		t.Errorf("report for the metrics: %+v, %v", last.Run, err)
	}
	if cur, _ := maintenance.Current(t.Context(), d); cur != nil {
		t.Errorf("lease left: %+v", cur)
	}
}

// While another cleanup or GC holds the run lock, a run is refused and
// deletes nothing; a dry run takes no lock and goes on.
func TestRunRespectsTheRunLock(t *testing.T) {
	d, st, orphan := site(t)
	other, err := maintenance.LockRuns(t.Context(), st, d, "registry-cleanup", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	flushed := false
	_, err = Run(t.Context(), d, Options{Storage: st, Heartbeat: 100 * time.Millisecond,
		FlushAfter: func(context.Context, func(context.Context) error) (int, error) { flushed = true; return 0, nil }})
	if !errors.Is(err, maintenance.ErrRunInProgress) || flushed {
		t.Fatalf("Run = %v (flushed %v), want ErrRunInProgress", err, flushed)
	}
	if last, _ := gcreport.Read(t.Context(), d); last.Run != nil {
		t.Errorf("a refused run was recorded: %+v", last.Run)
	}
	res, err := Run(t.Context(), d, Options{Collect: gc.Options{DryRun: true}, Storage: st,
		FlushAfter: func(context.Context, func(context.Context) error) (int, error) { flushed = true; return 0, nil }})
	if err != nil || res.Report.BlobsDeleted != 1 || res.Daemons != nil || flushed {
		t.Fatalf("dry run = %+v, %v (flushed %v)", res, err, flushed)
	}
	if _, err := d.Stat(t.Context(), storage.BlobDataPath(orphan)); err != nil {
		t.Errorf("the dry run deleted: %v", err)
	}
	if last, _ := gcreport.Read(t.Context(), d); last.DryRun == nil || last.Run != nil {
		t.Errorf("reports %+v: want the dry run's only", last)
	}
}
