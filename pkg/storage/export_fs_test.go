package storage

import "testing"

// WithoutOpenat2 makes the filesystem driver resolve paths one component
// at a time, as on kernels without openat2(2), until t ends.
func WithoutOpenat2(t testing.TB) {
	old := noOpenat2.Swap(true)
	t.Cleanup(func() { noOpenat2.Store(old) })
}
