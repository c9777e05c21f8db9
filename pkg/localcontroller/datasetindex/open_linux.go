//go:build linux

package datasetindex

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoSymlinks opens path read-only, refusing a symlink in any of its elements, not only the
// last: a directory on the resolved path could have been swapped for a link since Resolve.
// Kernels before 5.6, and seccomp profiles that do not know openat2, refuse the call (ENOSYS,
// or EPERM from older container runtimes); then only the last element is protected.
func openNoSymlinks(path string) (*os.File, error) {
	how := unix.OpenHow{
		// O_NONBLOCK keeps the open of a FIFO from waiting for a writer; the caller refuses
		// anything that is not a regular file, on which the flag has no effect.
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), path), nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN) && attempt < 3:
			// EAGAIN: a concurrent rename raced the lookup; the kernel asks for a retry.
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			return openNoFollow(path)
		default:
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
	}
}

func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
}
