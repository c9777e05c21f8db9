package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

// Files are made readable by everyone because the workers reading models and datasets through
// hostPath mounts usually run as a different user than the LC.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

func openLocal(src object) (io.ReadCloser, int64, error) {
	file, err := os.Open(src.file)
	if err != nil {
		return nil, 0, localError(err)
	}
	info, err := file.Stat()
	if err != nil {
		closeQuietly(file)
		return nil, 0, localError(err)
	}
	if !info.Mode().IsRegular() {
		closeQuietly(file)
		return nil, 0, fmt.Errorf("%s is not a regular file (end the URL with / to name a directory)", src.file)
	}
	return file, info.Size(), nil
}

func statLocal(src object) (int64, time.Time, error) {
	info, err := os.Stat(src.file)
	if err != nil {
		return 0, time.Time{}, localError(err)
	}
	if !info.Mode().IsRegular() {
		return 0, time.Time{}, fmt.Errorf("%s is not a regular file", src.file)
	}
	return info.Size(), info.ModTime(), nil
}

// listLocal returns the slash-separated paths of the regular files below the directory src,
// sorted so that transfers happen in a stable order.
func listLocal(ctx context.Context, src object) ([]string, error) {
	info, err := os.Stat(src.file)
	if err != nil {
		return nil, localError(err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", src.file)
	}
	var rels []string
	err = filepath.WalkDir(src.file, func(current string, entry fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		regular := entry.Type().IsRegular()
		if entry.Type()&fs.ModeSymlink != 0 {
			// Symlinked files are copied as their content; symlinked directories are not followed,
			// since a link back up the tree would make the walk endless.
			target, err := os.Stat(current)
			if err != nil {
				return localError(err)
			}
			regular = target.Mode().IsRegular()
		}
		if !regular {
			return nil
		}
		rel, err := filepath.Rel(src.file, current)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := checkRelative(src, rel); err != nil {
			return err
		}
		rels = append(rels, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", src.file, err)
	}
	sort.Strings(rels)
	return rels, nil
}

// writeFileAtomic writes the content of r to dst so that readers only ever see the old file or
// the complete new one (hostfs.WriteFileAtomic: a uniquely named temporary file in the same
// directory, fsync, rename, fsync of the directory). Parent directories are created.
func writeFileAtomic(dst string, r io.Reader) (written int64, err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return 0, fmt.Errorf("creating directory %s: %w", dir, err)
	}
	root, err := hostfs.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer func() { _ = root.Close() }() // a directory handle: nothing to flush
	err = hostfs.WriteFileAtomic(root, filepath.Base(dst), fileMode, func(w io.Writer) error {
		var copyErr error
		written, copyErr = io.Copy(w, r)
		return copyErr
	})
	if err != nil {
		return written, fmt.Errorf("writing %s: %w", dst, err)
	}
	return written, nil
}

// localError marks a missing path with ErrNotFound, keeping the os error (and its path).
func localError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
