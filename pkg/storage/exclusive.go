package storage

import (
	"context"
	"errors"
	"fmt"
)

// ErrExists is wrapped by CreateExclusive's error when the path is
// already there.
var ErrExists = errors.New("path already exists")

// Exists builds the error CreateExclusive returns for a taken path.
func Exists(path string) error { return fmt.Errorf("%s: %w", path, ErrExists) }

// ExclusiveCreator is implemented by drivers that can create a small file
// only if nothing is at its path yet, atomically: of several concurrent
// callers on one storage (several nodes on one bucket included), exactly
// one succeeds and the others get an error wrapping ErrExists. Readers
// see the whole content or nothing, never a part. It is what leases and
// other coordination between regctl processes are built on.
type ExclusiveCreator interface {
	CreateExclusive(ctx context.Context, path string, content []byte) error
}
