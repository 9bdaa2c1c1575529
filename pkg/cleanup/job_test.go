package cleanup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"regctl/pkg/distconfig"
	"regctl/pkg/maintenance"
)

// A cleanup that deletes holds the run lock of its storage: it is
// refused, before any request, while another run holds it, and it
// releases it when done; a dry run, or a registry given by URL alone,
// locks nothing.
func TestRunHoldsTheRunLock(t *testing.T) {
	var requests atomic.Int64
	var heldDuring atomic.Bool
	st := distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": t.TempDir()}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		lk, err := maintenance.LockRuns(context.Background(), st, nil, "probe", 0)
		if err == nil {
			lk.Release()
		}
		heldDuring.Store(errors.Is(err, maintenance.ErrRunInProgress))
		w.Write([]byte(`{"repositories":[]}`))
	}))
	t.Cleanup(srv.Close)
	cl, err := NewClient(srv.URL, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if _, err := Run(ctx, cl, Options{Storage: &st}); err != nil {
		t.Fatal(err)
	}
	if !heldDuring.Load() {
		t.Error("the run lock was not held while the cleanup ran")
	}
	other, err := maintenance.LockRuns(ctx, st, nil, "registry-garbage-collect", 0)
	if err != nil {
		t.Fatalf("the run lock after the cleanup: %v", err)
	}
	defer other.Release()
	before := requests.Load()
	if _, err := Run(ctx, cl, Options{Storage: &st}); !errors.Is(err, maintenance.ErrRunInProgress) {
		t.Errorf("while GC holds the lock: %v, want ErrRunInProgress", err)
	}
	if requests.Load() != before {
		t.Error("a refused cleanup sent requests")
	}
	for _, opts := range []Options{{Storage: &st, DryRun: true}, {}} {
		if _, err := Run(ctx, cl, opts); err != nil {
			t.Errorf("dry run %v, storage %v: %v", opts.DryRun, opts.Storage != nil, err)
		}
	}
}
