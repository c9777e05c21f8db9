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

// DirStore keeps files in one local directory, opened as an os.Root so no name can leave it,
// symlinks included.
type DirStore struct {
	root *os.Root
	dir  string
}

// NewDirStore opens (creating it if needed) dir.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the file directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the file directory: %w", err)
	}
	return &DirStore{root: root, dir: dir}, nil
}

// Close releases the directory.
func (d *DirStore) Close() error { return d.root.Close() }

func (d *DirStore) String() string { return d.dir }

// Put writes a temporary file, syncs it and renames it over name.
func (d *DirStore) Put(_ context.Context, name string, r io.Reader, size int64) (err error) {
	temporary := ".tmp-" + name
	file, err := d.root.OpenFile(temporary, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = file.Close()             // already failing; the write error says more
			_ = d.root.Remove(temporary) // best effort: a leftover temporary is never served
		}
	}()
	written, err := io.Copy(file, r)
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if written != size {
		return fmt.Errorf("storing %s: got %d bytes, want %d", name, written, size)
	}
	if err = file.Sync(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err = file.Close(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err = d.root.Rename(temporary, name); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}

// Open opens name for reading.
func (d *DirStore) Open(_ context.Context, name string) (io.ReadCloser, int64, error) {
	file, err := d.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
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
