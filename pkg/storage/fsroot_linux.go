package storage

import (
	"sync"

	"golang.org/x/sys/unix"
)

// openat2Works tells whether the kernel has openat2(2) (Linux 5.6) and
// lets this process use it: container runtimes with an old seccomp
// profile answer EPERM or ENOSYS.
var openat2Works = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err == nil {
		unix.Close(fd)
	}
	return err != unix.ENOSYS && err != unix.EPERM
})

func openat2(dirfd int, rel string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags: uint64(flags),
		Mode:  uint64(mode),
		// RESOLVE_NO_SYMLINKS refuses every link, the last component's
		// too; RESOLVE_BENEATH refuses "..", which CheckPath already
		// keeps out, and absolute paths.
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	}
	for range 100 {
		fd, err := unix.Openat2(dirfd, rel, &how)
		// EAGAIN: a rename raced the lookup; try again.
		if err != unix.EINTR && err != unix.EAGAIN {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}
