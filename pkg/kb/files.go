package kb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
)

// ErrBadFileName refuses a file name that is not one plain path element.
var ErrBadFileName = errors.New("file name refused")

// ErrFileNotFound is returned for a file the knowledge base does not hold.
var ErrFileNotFound = errors.New("no such file")

var fileNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$`)

// CheckFileName accepts only a single path element of [A-Za-z0-9._-] that does not start with a
// dot: no separators, no "..", no hidden files, nothing a store could resolve outside its root.
func CheckFileName(name string) error {
	if !fileNamePattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q must be 1-255 characters of [A-Za-z0-9._-], not starting with '.' nor containing '..'", ErrBadFileName, name)
	}
	return nil
}

// FileStore keeps the knowledge base's files (indexes, models) by name. Names reaching it have
// passed CheckFileName.
type FileStore interface {
	// Put replaces the file name with size bytes from r, atomically for readers.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Open returns the file and its size, or ErrFileNotFound.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
	// String describes where the files live, for logs.
	String() string
}

// DirStore keeps files in one local directory, opened as a hostfs.Root so no name can leave it,
// symlinks included.
type DirStore struct {
	root *hostfs.Root
	dir  string
}

// NewDirStore opens (creating it if needed) dir and removes the temporary files an interrupted
// Put may have left.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the file directory: %w", err)
	}
	root, err := hostfs.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the file directory: %w", err)
	}
	d := &DirStore{root: root, dir: dir}
	if err := d.removeTemporaries(); err != nil {
		_ = root.Close() // the cleanup error is the one to report
		return nil, err
	}
	return d, nil
}

// removeTemporaries removes hidden ".<name>.tmp-*" files (hostfs.WriteFileAtomic's temporaries)
// left by a crash; CheckFileName never admits a hidden name, so none is a stored file.
func (d *DirStore) removeTemporaries() error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("listing the file directory: %w", err)
	}
	for _, entry := range entries {
		if name := entry.Name(); strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") && entry.Type().IsRegular() {
			if err := d.root.Remove(name); err != nil {
				return fmt.Errorf("removing the stale temporary file %s: %w", name, err)
			}
		}
	}
	return nil
}

// Close releases the directory.
func (d *DirStore) Close() error { return d.root.Close() }

func (d *DirStore) String() string { return d.dir }

// Put replaces name atomically (hostfs.WriteFileAtomic: a uniquely named temporary file, fsync,
// rename), so concurrent Puts of one name each leave a complete file and the last rename wins.
func (d *DirStore) Put(_ context.Context, name string, r io.Reader, size int64) error {
	err := hostfs.WriteFileAtomic(d.root, name, 0o640, func(w io.Writer) error {
		written, err := io.Copy(w, r)
		if err != nil {
			return err
		}
		if written != size {
			return fmt.Errorf("got %d bytes, want %d", written, size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}

// Open opens name for reading. A name that is missing, not a regular file, or resolves outside
// the directory (a planted symlink) is ErrFileNotFound.
func (d *DirStore) Open(_ context.Context, name string) (io.ReadCloser, int64, error) {
	// The store never makes symlinks: one here was planted, and is not followed even inside.
	file, err := d.root.OpenNoSymlinks(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, hostfs.ErrOutside) {
		return nil, 0, fmt.Errorf("%w: %s", ErrFileNotFound, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("opening %s: %w", name, err)
	}
	info, err := file.Stat()
	if err != nil {
		_ = file.Close() // the Stat error is the one to report
		return nil, 0, fmt.Errorf("opening %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		_ = file.Close() // nothing was read
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrFileNotFound, name)
	}
	return file, info.Size(), nil
}

// S3Store keeps files below an s3:// prefix through the project's storage client.
type S3Store struct {
	client *storage.Client
	prefix string
}

// NewS3Store stores files as objects prefix+name; prefix is an s3:// URL ending in "/".
func NewS3Store(client *storage.Client, prefix string) (*S3Store, error) {
	location, err := storage.ParseURL(prefix)
	if err != nil {
		return nil, fmt.Errorf("file prefix: %w", err)
	}
	if location.Scheme != storage.SchemeS3 || !location.IsTree() {
		return nil, fmt.Errorf("file prefix %q must be an s3:// URL ending in /", prefix)
	}
	return &S3Store{client: client, prefix: prefix}, nil
}

func (s *S3Store) String() string { return s.prefix }

// Put uploads the object (S3 makes a completed upload visible at once, never half of it).
func (s *S3Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return s.client.PutObject(ctx, s.prefix+name, r, size)
}

// Open downloads the object.
func (s *S3Store) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	reader, size, err := s.client.OpenObject(ctx, s.prefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrFileNotFound, name)
	}
	return reader, size, err
}
