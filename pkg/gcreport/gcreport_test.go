package gcreport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

func TestReportsKeepTheLastSuccessAndTheirKinds(t *testing.T) {
	ctx := context.Background()
	drv, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if l, err := Read(ctx, drv); err != nil || l.Run != nil || l.DryRun != nil {
		t.Fatalf("no run yet: %+v, %v", l, err)
	}
	t0 := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	ok := New(&gc.Report{BlobsDeleted: 3, ManifestsDeleted: 1, LayerLinksDeleted: 2, BytesFreed: 4096,
		Problems: []gc.Problem{{Kind: gc.ProblemCorruptLink}}}, true, false, t0, t0.Add(90*time.Second), nil)
	if err := Write(ctx, drv, ok); err != nil {
		t.Fatal(err)
	}
	dry := New(&gc.Report{BlobsDeleted: 7}, false, true, t0.Add(time.Hour), t0.Add(time.Hour+time.Second), nil)
	if err := Write(ctx, drv, dry); err != nil {
		t.Fatal(err)
	}
	failed := New(nil, true, false, t0.Add(2*time.Hour), t0.Add(2*time.Hour+time.Minute), errors.New("ack timeout"))
	if err := Write(ctx, drv, failed); err != nil {
		t.Fatal(err)
	}
	l, err := Read(ctx, drv)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Run
	if r == nil || r.Success || r.Error != "ack timeout" || r.BlobsDeleted != 0 || !r.DeleteUntagged ||
		!r.Finished.Equal(t0.Add(2*time.Hour+time.Minute)) || r.Duration != time.Minute {
		t.Errorf("last run = %+v, want the failure", r)
	}
	if !r.LastSuccess.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("last success = %v, want the earlier run's %v", r.LastSuccess, t0.Add(90*time.Second))
	}
	if d := l.DryRun; d == nil || !d.DryRun || d.BlobsDeleted != 7 || !d.Success {
		t.Errorf("dry run = %+v: a real run must not replace it", d)
	}
	// A report that no longer parses is an error naming it; the other
	// still reads.
	if err := drv.PutContent(ctx, Path(true), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	l, err = Read(ctx, drv)
	if err == nil || !strings.Contains(err.Error(), "last-dry-run.json") || l.Run == nil {
		t.Errorf("corrupt dry-run report: %+v, %v", l, err)
	}
}

func TestRecordLogsAFailedWrite(t *testing.T) {
	root := t.TempDir()
	drv, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	// The report's folder cannot be made: a file stands in its way.
	if err := os.MkdirAll(filepath.Join(root, "docker/registry/v2/_regctl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docker/registry/v2/_regctl/gc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	now := time.Now()
	Record(drv, slog.New(slog.NewTextHandler(&buf, nil)), New(&gc.Report{}, false, false, now, now, nil))
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "GC report") {
		t.Errorf("log = %q, want a warning about the report", buf.String())
	}
}
