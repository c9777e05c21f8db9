//go:build unix && !linux

package hostfs

import (
	"errors"
	"os"
	"syscall"
)

const (
	nonblock = syscall.O_NONBLOCK
	nofollow = syscall.O_NOFOLLOW
)

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// sameLocation cannot ask the kernel for a descriptor's name here: only the last element of a
// path opened by OpenNoSymlinks is checked (O_NOFOLLOW).
func sameLocation(_, _ *os.File, _ string) error { return nil }

var forceFallback bool

// beneathAvailable is false: only Linux has openat2, so Roots use os.Root.
func beneathAvailable() bool { return false }

var errNoBeneath = errors.New("openat2 is Linux only")

func closeFD(int) error                               { return nil }
func openDirPath(string) (int, error)                 { return -1, errNoBeneath }
func openDirBeneath(int, string, string) (int, error) { return -1, errNoBeneath }
func openBeneath(int, string, string, int, os.FileMode) (*os.File, error) {
	return nil, errNoBeneath
}
func mkdirAllBeneath(int, string, string, os.FileMode) error { return errNoBeneath }
func renameBeneath(int, string, string, string) error        { return errNoBeneath }
func removeBeneath(int, string, string) error                { return errNoBeneath }
func removeAllBeneath(int, string, string) error             { return errNoBeneath }

// OpenNoSymlinks opens path read-only without following a symlink in its last element. Only
// Linux has openat2, which also refuses symlinks in the directories on the way; elsewhere a
// directory swapped for a link after a check goes unnoticed.
func OpenNoSymlinks(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
