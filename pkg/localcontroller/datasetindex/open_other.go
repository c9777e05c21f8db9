//go:build unix && !linux

package datasetindex

import (
	"os"
	"syscall"
)

// openNoSymlinks opens path read-only without following a symlink in its last element. Only
// Linux has openat2, which also refuses symlinks in the directories on the way; elsewhere a
// directory swapped for a link after Resolve goes unnoticed.
func openNoSymlinks(path string) (*os.File, error) {
	// O_NONBLOCK keeps the open of a FIFO from waiting for a writer; the caller refuses anything
	// that is not a regular file.
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
