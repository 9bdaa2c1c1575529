// Package gcreport keeps the figures of the last garbage collection in the
// storage, so that every daemon on that storage can export them as
// metrics although the collector runs in a process of its own (and, in a
// cluster, on any node):
//
//	/docker/registry/v2/_regctl/gc/last-run.json       the last run that deletes
//	/docker/registry/v2/_regctl/gc/last-dry-run.json   the last dry run
//
// A dry run has a file of its own so that it never hides the last real
// run from monitoring. The files sit under regctl's own prefix, which CNCF
// Distribution never reads.
package gcreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"regctl/pkg/gc"
	"regctl/pkg/storage"
)

// Dir holds the reports.
const Dir = storage.Root + "/_regctl/gc"

// Path is the report of the last run of a kind.
func Path(dryRun bool) string {
	if dryRun {
		return Dir + "/last-dry-run.json"
	}
	return Dir + "/last-run.json"
}

// Report is what a run leaves behind.
type Report struct {
	Finished       time.Time     `json:"finished"`
	Duration       time.Duration `json:"duration_ns"`
	DryRun         bool          `json:"dry_run"`
	DeleteUntagged bool          `json:"delete_untagged"`
	Success        bool          `json:"success"`
	// Error is why a failed run stopped.
	Error string `json:"error,omitempty"`

	ManifestsDeleted  int   `json:"manifests_deleted"`
	BlobsDeleted      int   `json:"blobs_deleted"`
	LayerLinksDeleted int   `json:"layer_links_deleted"`
	BytesFreed        int64 `json:"bytes_freed"`
	Problems          int   `json:"problems"`
	// LastSuccess is when the last successful run of this kind finished
	// (this one, or one before a failure), zero if none is known.
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// New describes a finished run: r is what gc.Run reported (nil when the
// run never got that far), err how the whole job ended, started when it
// began.
func New(r *gc.Report, untagged, dryRun bool, started, finished time.Time, err error) Report {
	rep := Report{
		Finished: finished.UTC(), Duration: finished.Sub(started),
		DryRun: dryRun, DeleteUntagged: untagged, Success: err == nil,
	}
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.LastSuccess = rep.Finished
	}
	if r != nil {
		rep.ManifestsDeleted, rep.BlobsDeleted, rep.LayerLinksDeleted = r.ManifestsDeleted, r.BlobsDeleted, r.LayerLinksDeleted
		rep.BytesFreed, rep.Problems = r.BytesFreed, len(r.Problems)
	}
	return rep
}

// Write stores rep as the last run of its kind, in one atomic
// PutContent. A failed run keeps the previous report's LastSuccess.
func Write(ctx context.Context, drv storage.Driver, rep Report) error {
	if !rep.Success {
		if prev, err := read(ctx, drv, Path(rep.DryRun)); err == nil && prev != nil {
			rep.LastSuccess = prev.LastSuccess
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := drv.PutContent(ctx, Path(rep.DryRun), append(b, '\n')); err != nil {
		return fmt.Errorf("writing the GC report for the registry's metrics: %w", err)
	}
	return nil
}

// Last is the reports found: nil where a kind has never run.
type Last struct {
	Run, DryRun *Report
}

// Read reads both reports. A missing report is no error; an unreadable
// one is, and the other is still returned.
func Read(ctx context.Context, drv storage.Driver) (Last, error) {
	var l Last
	var errs []error
	var err error
	if l.Run, err = read(ctx, drv, Path(false)); err != nil {
		errs = append(errs, err)
	}
	if l.DryRun, err = read(ctx, drv, Path(true)); err != nil {
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}

func read(ctx context.Context, drv storage.Driver, p string) (*Report, error) {
	b, err := drv.GetContent(ctx, p)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &rep, nil
}

// Record writes rep and logs, rather than returns, a failure: the
// report is for monitoring, and a collection must not fail for it. It
// uses a context of its own, so a run stopped by Ctrl-C is still
// recorded.
func Record(drv storage.Driver, log *slog.Logger, rep Report) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Write(ctx, drv, rep); err != nil && log != nil {
		log.Warn("the registry's metrics will not show this run", "err", err)
	}
}
