package hostfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ModeBeneath and ModeOSRoot are the values of Mode.
const (
	ModeBeneath = "openat2"
	ModeOSRoot  = "os.Root"
)

// Root is an open directory; every method resolves its path argument beneath it. A Root is safe
// for concurrent use; Close it when done.
type Root struct {
	// name is the directory's path in the LC's filesystem, for messages.
	name string
	// fd is an O_PATH descriptor of the directory when openat2 is used, else -1.
	fd int
	// fallback is used when openat2 is unavailable.
	fallback *os.Root
}

// Mode returns which mechanism confines the Roots of this process: ModeBeneath or ModeOSRoot.
func Mode() string {
	if beneathAvailable() {
		return ModeBeneath
	}
	return ModeOSRoot
}

// OpenRoot opens the directory dir, a path in the LC's filesystem the caller trusts (an
// operator-configured root under the rootfs mount): symlinks in dir itself are followed.
func OpenRoot(dir string) (*Root, error) {
	if !beneathAvailable() {
		root, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		return &Root{name: dir, fd: -1, fallback: root}, nil
	}
	fd, err := openDirPath(dir)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{name: dir, fd: fd}, nil
}

// Name returns the directory's path in the LC's filesystem.
func (r *Root) Name() string { return r.name }

// Close releases the directory handle.
func (r *Root) Close() error {
	if r.fallback != nil {
		return r.fallback.Close()
	}
	return closeFD(r.fd)
}

// checkRel refuses what cannot name something beneath the root: an absolute path, "..", an
// empty path or a NUL byte.
func (r *Root) checkRel(op, rel string) error {
	if rel == "" || !filepath.IsLocal(rel) {
		return &os.PathError{Op: op, Path: filepath.Join(r.name, rel), Err: fmt.Errorf("%q is not a path below %s: %w", rel, r.name, ErrOutside)}
	}
	return nil
}

// ErrOutside marks a path that does not stay below its Root (absolute, "..", or through a symlink
// where symlinks are refused).
var ErrOutside = errors.New("path leaves its root")

// Open opens the file or directory rel for reading. O_NONBLOCK keeps the open of a FIFO from
// waiting for a writer; callers reading regular files should check what they got.
func (r *Root) Open(rel string) (*os.File, error) {
	return r.OpenFile(rel, os.O_RDONLY|nonblock, 0)
}

// OpenFile opens rel with flag and, when it creates the file, perm (before the umask).
func (r *Root) OpenFile(rel string, flag int, perm os.FileMode) (*os.File, error) {
	if rel != "." {
		if err := r.checkRel("open", rel); err != nil {
			return nil, err
		}
	}
	if r.fallback != nil {
		return r.fallback.OpenFile(rel, flag, perm)
	}
	return openBeneath(r.fd, r.name, rel, flag, perm)
}

// OpenNoSymlinks opens rel for reading (O_NONBLOCK, as Open) and fails, wrapping ErrOutside, when
// any element of rel is a symlink, even one whose target stays beneath the root: for a path the
// kubelet will mount, a link that stays inside today is one element away from a link that does
// not. With openat2 that is how every path is resolved; with the os.Root fallback, which follows
// links that stay inside, the last element is opened with O_NOFOLLOW and the kernel's name of the
// descriptor must be the root's name joined with rel (on Linux, through /proc; elsewhere only the
// last element is checked).
func (r *Root) OpenNoSymlinks(rel string) (*os.File, error) {
	if r.fallback == nil {
		return r.Open(rel)
	}
	if rel != "." {
		if err := r.checkRel("open", rel); err != nil {
			return nil, err
		}
	}
	file, err := r.fallback.OpenFile(rel, os.O_RDONLY|nonblock|nofollow, 0)
	if err != nil {
		if isLoop(err) {
			err = fmt.Errorf("%w (a symlink: %w)", err, ErrOutside)
		}
		return nil, err
	}
	dir, err := r.fallback.Open(".")
	if err != nil {
		_ = file.Close() // read only
		return nil, err
	}
	defer func() { _ = dir.Close() }() // read only
	if err := sameLocation(dir, file, rel); err != nil {
		_ = file.Close() // read only
		return nil, &os.PathError{Op: "open", Path: filepath.Join(r.name, rel), Err: err}
	}
	return file, nil
}

// OpenRoot opens the directory rel as a Root of its own, beneath this one.
func (r *Root) OpenRoot(rel string) (*Root, error) {
	name := filepath.Join(r.name, rel)
	if rel != "." {
		if err := r.checkRel("open", rel); err != nil {
			return nil, err
		}
	}
	if r.fallback != nil {
		sub, err := r.fallback.OpenRoot(rel)
		if err != nil {
			return nil, err
		}
		return &Root{name: name, fd: -1, fallback: sub}, nil
	}
	fd, err := openDirBeneath(r.fd, r.name, rel)
	if err != nil {
		return nil, err
	}
	return &Root{name: name, fd: fd}, nil
}

// MkdirAll creates the directory rel and its missing parents with perm (before the umask). An
// element that exists and is not a directory, or is a symlink, fails the call.
func (r *Root) MkdirAll(rel string, perm os.FileMode) error {
	if rel == "." {
		return nil
	}
	if err := r.checkRel("mkdir", rel); err != nil {
		return err
	}
	if r.fallback != nil {
		return r.fallback.MkdirAll(rel, perm)
	}
	return mkdirAllBeneath(r.fd, r.name, rel, perm)
}

// Rename renames oldRel to newRel, both beneath the root; newRel is replaced if it exists (a
// symlink there is replaced, not followed).
func (r *Root) Rename(oldRel, newRel string) error {
	if err := r.checkRel("rename", oldRel); err != nil {
		return err
	}
	if err := r.checkRel("rename", newRel); err != nil {
		return err
	}
	if r.fallback != nil {
		return r.fallback.Rename(oldRel, newRel)
	}
	return renameBeneath(r.fd, r.name, oldRel, newRel)
}

// Remove removes the file or empty directory rel (a symlink there is removed, not followed).
func (r *Root) Remove(rel string) error {
	if err := r.checkRel("remove", rel); err != nil {
		return err
	}
	if r.fallback != nil {
		return r.fallback.Remove(rel)
	}
	return removeBeneath(r.fd, r.name, rel)
}

// RemoveAll removes rel and everything below it, never following a symlink; a missing rel is not
// an error.
func (r *Root) RemoveAll(rel string) error {
	if err := r.checkRel("remove", rel); err != nil {
		return err
	}
	if r.fallback != nil {
		return r.fallback.RemoveAll(rel)
	}
	return removeAllBeneath(r.fd, r.name, rel)
}

// WriteFileAtomic replaces rel (whose directory must exist) with what write produces, so that
// readers only ever see the old or the complete new content: a temporary file in the same
// directory, fsync, rename, fsync of the directory so the rename survives a power cut. The file
// gets mode perm whatever the umask.
func WriteFileAtomic(root *Root, rel string, perm os.FileMode, write func(io.Writer) error) (err error) {
	if err := root.checkRel("write", rel); err != nil {
		return err
	}
	suffix := make([]byte, 8)
	if _, err := rand.Read(suffix); err != nil {
		return fmt.Errorf("naming a temporary file: %w", err)
	}
	dir := filepath.Dir(rel)
	tmpName := filepath.Join(dir, "."+filepath.Base(rel)+".tmp-"+hex.EncodeToString(suffix))
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Best effort: the hidden, uniquely named leftover harms nothing.
			_ = tmp.Close()
			_ = root.Remove(tmpName)
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	// The umask may have narrowed the mode given to OpenFile.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := root.Rename(tmpName, rel); err != nil {
		return err
	}
	handle, err := root.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("opening the directory to sync the rename: %w", err)
	}
	syncErr := handle.Sync()
	closeErr := handle.Close()
	if err := errors.Join(syncErr, closeErr); err != nil {
		// The file is in place and complete; only its survival of a crash is in doubt.
		return fmt.Errorf("syncing the directory after renaming %s: %w", rel, err)
	}
	return nil
}
