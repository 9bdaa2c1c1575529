//go:build !linux

package storage

// openat2 is Linux's: elsewhere paths are resolved one component at a
// time.
func openat2Works() bool { return false }

func openat2(dirfd int, rel string, flags int, mode uint32) (int, error) {
	return openPerComponent(dirfd, rel, flags, mode)
}
