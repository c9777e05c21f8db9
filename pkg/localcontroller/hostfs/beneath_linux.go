//go:build linux

package hostfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	nonblock = unix.O_NONBLOCK
	nofollow = unix.O_NOFOLLOW
)

func isLoop(err error) bool { return errors.Is(err, unix.ELOOP) }

// sameLocation checks that the kernel's name of file is the kernel's name of dir joined with rel:
// it differs when an element of rel was a symlink. When /proc cannot tell, the answer is no.
func sameLocation(dir, file *os.File, rel string) error {
	dirName, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())))
	if err != nil {
		return fmt.Errorf("openat2 unavailable and /proc cannot confirm the path has no symlinks: %w", err)
	}
	fileName, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(file.Fd())))
	if err != nil {
		return fmt.Errorf("openat2 unavailable and /proc cannot confirm the path has no symlinks: %w", err)
	}
	if want := filepath.Join(dirName, rel); fileName != want {
		return fmt.Errorf("the path leads to %s, not %s: a symlink on the way: %w", fileName, want, ErrOutside)
	}
	return nil
}

// resolveBeneath is how every path below a Root is resolved.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

var (
	probeOnce sync.Once
	probed    bool
	// forceFallback makes the process use os.Root (tests of the fallback).
	forceFallback bool
)

// beneathAvailable reports whether the kernel (and the seccomp profile) allow openat2.
func beneathAvailable() bool {
	if forceFallback {
		return false
	}
	probeOnce.Do(func() {
		fd, err := openat2(unix.AT_FDCWD, "/", unix.O_PATH|unix.O_CLOEXEC, 0, 0)
		if err == nil {
			_ = unix.Close(fd)
			probed = true
		}
	})
	return probed
}

// openat2 retries what the kernel asks to be retried: EINTR, and EAGAIN, which openat2 returns
// when a concurrent rename raced the lookup.
func openat2(dirfd int, path string, flags int, mode uint32, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Mode: uint64(mode), Resolve: resolve}
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat2(dirfd, path, &how)
		if err == nil {
			return fd, nil
		}
		if errors.Is(err, unix.EINTR) || (errors.Is(err, unix.EAGAIN) && attempt < 8) {
			continue
		}
		return -1, err
	}
}

func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("closing a directory handle: %w", err)
	}
	return nil
}

// openDirPath opens the trusted directory dir as an O_PATH descriptor.
func openDirPath(dir string) (int, error) {
	for {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// pathError names the path in the LC's filesystem; ELOOP and EXDEV, which openat2 returns for a
// symlink or a path leaving the root, also wrap ErrOutside.
func pathError(op, rootName, rel string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		err = fmt.Errorf("%w (a symlink on the path, or a path leaving %s: %w)", err, rootName, ErrOutside)
	}
	return &os.PathError{Op: op, Path: filepath.Join(rootName, rel), Err: err}
}

func openBeneath(dirfd int, rootName, rel string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := openat2(dirfd, rel, flag, uint32(perm.Perm()), resolveBeneath)
	if err != nil {
		return nil, pathError("open", rootName, rel, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(rootName, rel)), nil
}

func openDirBeneath(dirfd int, rootName, rel string) (int, error) {
	fd, err := openat2(dirfd, rel, unix.O_PATH|unix.O_DIRECTORY, 0, resolveBeneath)
	if err != nil {
		return -1, pathError("open", rootName, rel, err)
	}
	return fd, nil
}

// openParent opens the directory holding rel beneath dirfd and returns it with rel's last element.
func openParent(dirfd int, rootName, rel string) (int, string, error) {
	dir, base := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	fd, err := openDirBeneath(dirfd, rootName, filepath.Clean(dir))
	return fd, base, err
}

func mkdirAllBeneath(dirfd int, rootName, rel string, perm os.FileMode) error {
	current, err := unix.Dup(dirfd)
	if err != nil {
		return pathError("mkdir", rootName, rel, err)
	}
	defer func() { _ = unix.Close(current) }() // a directory handle only
	done := ""
	for _, element := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		done = filepath.Join(done, element)
		// mkdirat does not follow a symlink in its last element: an existing link is EEXIST and
		// then refused by the open below.
		if err := unix.Mkdirat(current, element, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			return pathError("mkdir", rootName, done, err)
		}
		next, err := openat2(current, element, unix.O_PATH|unix.O_DIRECTORY, 0, resolveBeneath)
		if err != nil {
			return pathError("mkdir", rootName, done, err)
		}
		_ = unix.Close(current)
		current = next
	}
	return nil
}

func renameBeneath(dirfd int, rootName, oldRel, newRel string) error {
	oldDir, oldBase, err := openParent(dirfd, rootName, oldRel)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(oldDir) }() // a directory handle only
	newDir, newBase, err := openParent(dirfd, rootName, newRel)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(newDir) }() // a directory handle only
	if err := unix.Renameat(oldDir, oldBase, newDir, newBase); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(rootName, oldRel), New: filepath.Join(rootName, newRel), Err: err}
	}
	return nil
}

func removeBeneath(dirfd int, rootName, rel string) error {
	dir, base, err := openParent(dirfd, rootName, rel)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(dir) }() // a directory handle only
	return unlinkIn(dir, base, rootName, rel)
}

func unlinkIn(dir int, base, rootName, rel string) error {
	err := unix.Unlinkat(dir, base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return pathError("remove", rootName, rel, err)
	}
	return nil
}

func removeAllBeneath(dirfd int, rootName, rel string) error {
	dir, base, err := openParent(dirfd, rootName, rel)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(dir) }() // a directory handle only
	return removeTree(dir, base, rootName, rel, 0)
}

// maxRemoveDepth bounds the recursion of RemoveAll.
const maxRemoveDepth = 256

// removeTree removes the entry name of dir, and everything below it when it is a directory.
func removeTree(dir int, name, rootName, rel string, depth int) error {
	var stat unix.Stat_t
	if err := unix.Fstatat(dir, name, &stat, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return pathError("remove", rootName, rel, err)
	}
	if stat.Mode&unix.S_IFMT != unix.S_IFDIR {
		err := unix.Unlinkat(dir, name, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return pathError("remove", rootName, rel, err)
		}
		return nil
	}
	if depth >= maxRemoveDepth {
		return pathError("remove", rootName, rel, fmt.Errorf("more than %d nested directories", maxRemoveDepth))
	}
	fd, err := openat2(dir, name, unix.O_RDONLY|unix.O_DIRECTORY, 0, resolveBeneath)
	if err != nil {
		return pathError("remove", rootName, rel, err)
	}
	listing := os.NewFile(uintptr(fd), filepath.Join(rootName, rel))
	defer func() { _ = listing.Close() }() // read only
	for {
		names, err := listing.Readdirnames(256)
		for _, child := range names {
			if err := removeTree(fd, child, rootName, filepath.Join(rel, child), depth+1); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			break
		}
		if err != nil {
			return pathError("remove", rootName, rel, err)
		}
	}
	if err := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return pathError("remove", rootName, rel, err)
	}
	return nil
}

// OpenNoSymlinks opens the absolute path read-only (O_NONBLOCK, so a FIFO does not block the
// open) refusing a symlink in any of its elements, not only the last: a directory on a path
// checked earlier could have been swapped for a link since. Without openat2 the file is opened
// with O_NOFOLLOW and the kernel's name of the descriptor must equal path (it names the real
// location, so it differs when a directory on the way was a link); when /proc cannot tell, the
// open is refused rather than trusted.
func OpenNoSymlinks(path string) (*os.File, error) {
	if beneathAvailable() {
		fd, err := openat2(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0,
			unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				err = fmt.Errorf("%w (a symlink on the path: %w)", err, ErrOutside)
			}
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	file, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = fmt.Errorf("%w (%w)", err, ErrOutside)
		}
		return nil, err
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(file.Fd())))
	if err != nil || real != filepath.Clean(path) {
		_ = file.Close() // read only
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("openat2 unavailable and /proc cannot confirm the path has no symlinks: %w", err)}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("the path leads to %s: a symlink on the way: %w", real, ErrOutside)}
	}
	return file, nil
}
