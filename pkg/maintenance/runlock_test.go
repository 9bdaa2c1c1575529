package maintenance

import (
	"errors"
	"path/filepath"
	"testing"

	"regctl/pkg/distconfig"
)

func TestRunLock(t *testing.T) {
	root := t.TempDir()
	fs := distconfig.Storage{Driver: "filesystem", Params: map[string]any{"rootdirectory": root}}
	if p := RunLockPath(fs); p != filepath.Join(root, ".regctl-run.lock") {
		t.Errorf("filesystem lock at %s", p)
	}
	s3 := func(bucket string) distconfig.Storage {
		return distconfig.Storage{Driver: "s3", Params: map[string]any{"bucket": bucket, "regionendpoint": "http://s3:9000"}}
	}
	if RunLockPath(s3("a")) == RunLockPath(s3("b")) || RunLockPath(s3("a")) != RunLockPath(s3("a")) {
		t.Error("S3 lock paths must differ per bucket and be stable")
	}
	unlock, err := LockRuns(fs, "first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockRuns(fs, "second"); !errors.Is(err, ErrRunInProgress) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock, err = LockRuns(fs, "third")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock()
}
