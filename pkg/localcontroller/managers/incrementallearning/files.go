package incrementallearning

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
)

const (
	// dirMode is group-writable: the workers (65532) write the directories the LC makes for
	// them, through the group they inherit from a setgid output directory (cmd/sedna-lc sets
	// umask 002; docs/install.md).
	dirMode  os.FileMode = 0o775
	fileMode os.FileMode = 0o644
)

// hostFiles reads and writes host paths of the node through the rootfs mount, only through
// package hostfs: reads are resolved by the Resolver (confined to the allowed data roots) and
// opened beneath the root they lie under, writes go beneath one of the write roots, so neither
// ".." nor a symlink planted (or swapped in during the operation) by a worker leads the LC
// elsewhere on the node.
type hostFiles struct {
	rootfs     string
	resolver   *datasetindex.Resolver
	writeRoots []string
	maxBytes   int64
}

// writeError is a failure on the writing side of an operation: the path could not be written
// (read-only, permission, space, outside the write roots). The job reports it as a problem and
// retries; a failure to read a source is not one.
type writeError struct {
	path string
	err  error
}

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// checkHostPath refuses what cannot be a plain absolute host path.
func checkHostPath(hostPath string) error {
	switch {
	case strings.Contains(hostPath, "://"):
		return fmt.Errorf("%q is a URL; this LC reads and writes host paths only", hostPath)
	case strings.IndexByte(hostPath, 0) >= 0:
		return fmt.Errorf("%q contains a NUL byte", hostPath)
	case !path.IsAbs(hostPath):
		return fmt.Errorf("%q is not an absolute host path", hostPath)
	}
	for _, element := range strings.Split(hostPath, "/") {
		if element == ".." {
			return fmt.Errorf("%q contains a \"..\" element", hostPath)
		}
	}
	return nil
}

// writeRoot opens the write root hostPath lies strictly below and returns hostPath relative to it.
func (f *hostFiles) writeRoot(hostPath string) (*hostfs.Root, string, error) {
	if err := checkHostPath(hostPath); err != nil {
		return nil, "", &writeError{path: hostPath, err: err}
	}
	cleaned := path.Clean(hostPath)
	for _, root := range f.writeRoots {
		rel, below := strings.CutPrefix(cleaned, strings.TrimSuffix(root, "/")+"/")
		if !below || rel == "" {
			continue
		}
		opened, err := hostfs.OpenRoot(filepath.Join(f.rootfs, root))
		if err != nil {
			return nil, "", &writeError{path: hostPath, err: fmt.Errorf("opening the write root %s: %w", root, err)}
		}
		return opened, filepath.FromSlash(rel), nil
	}
	return nil, "", &writeError{path: hostPath, err: fmt.Errorf("%s is not below any directory this LC may write (%s)", hostPath, strings.Join(f.writeRoots, ", "))}
}

// writeFile replaces the host file hostPath with content atomically, creating its directories.
func (f *hostFiles) writeFile(hostPath string, content []byte) error {
	root, rel, err := f.writeRoot(hostPath)
	if err != nil {
		return fmt.Errorf("writing %s: %w", hostPath, err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	if err := writeAtomic(root, rel, func(w io.Writer) error { _, err := w.Write(content); return err }); err != nil {
		return &writeError{path: hostPath, err: fmt.Errorf("writing %s: %w", hostPath, err)}
	}
	return nil
}

// mkdirAll creates the host directory hostPath.
func (f *hostFiles) mkdirAll(hostPath string) error {
	root, rel, err := f.writeRoot(hostPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", hostPath, err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	if err := root.MkdirAll(rel, dirMode); err != nil {
		return &writeError{path: hostPath, err: fmt.Errorf("creating %s: %w", hostPath, err)}
	}
	return nil
}

// readFile reads the host file hostPath, up to maxBytes.
func (f *hostFiles) readFile(hostPath string) ([]byte, error) {
	file, err := f.resolver.Open(hostPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = file.Close() }() // read only
	if err := checkRegular(file, hostPath); err != nil {
		return nil, err
	}
	content, err := io.ReadAll(io.LimitReader(file, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", hostPath, err)
	}
	if int64(len(content)) > f.maxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", hostPath, f.maxBytes)
	}
	return content, nil
}

func checkRegular(file *os.File, name string) error {
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (mode %s)", name, info.Mode().Type())
	}
	return nil
}

// maxTreeDepth bounds the nesting of a model directory that is copied.
const maxTreeDepth = 64

// copyInto copies the host file or directory src into dst under the name name, replacing what
// is there file by file.
func (f *hostFiles) copyInto(src string, dst *hostfs.Root, name string) error {
	in, err := f.resolver.Open(src)
	if err != nil {
		return err
	}
	info, err := in.Stat()
	if err != nil {
		_ = in.Close() // read only
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if info.Mode().IsRegular() {
		defer func() { _ = in.Close() }() // read only
		return copyFile(in, dst, name, src)
	}
	_ = in.Close() // read only; the directory is opened again as a Root
	if !info.IsDir() {
		return fmt.Errorf("%s is neither a file nor a directory", src)
	}
	srcRoot, err := f.resolver.OpenRoot(src)
	if err != nil {
		return err
	}
	defer func() { _ = srcRoot.Close() }() // a directory handle only
	if err := dst.MkdirAll(name, dirMode); err != nil {
		return &writeError{path: filepath.Join(dst.Name(), name), err: err}
	}
	return copyTree(srcRoot, ".", dst, name, src, 0)
}

// copyTree copies the directory rel of src (named srcName in messages) to dstRel in dst; every
// open on both sides is confined by hostfs, so a symlink in the tree, even one swapped in during
// the copy, is refused rather than followed.
func copyTree(src *hostfs.Root, rel string, dst *hostfs.Root, dstRel, srcName string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%s: more than %d nested directories", srcName, maxTreeDepth)
	}
	dir, err := src.Open(rel)
	if err != nil {
		return fmt.Errorf("reading %s: %w", srcName, err)
	}
	entries, err := dir.ReadDir(-1)
	_ = dir.Close() // read only
	if err != nil {
		return fmt.Errorf("listing %s/%s: %w", srcName, filepath.ToSlash(rel), err)
	}
	for _, entry := range entries {
		childRel, childDst := filepath.Join(rel, entry.Name()), filepath.Join(dstRel, entry.Name())
		shown := srcName + "/" + filepath.ToSlash(childRel)
		switch {
		case entry.IsDir():
			if err := dst.MkdirAll(childDst, dirMode); err != nil {
				return &writeError{path: filepath.Join(dst.Name(), childDst), err: err}
			}
			if err := copyTree(src, childRel, dst, childDst, srcName, depth+1); err != nil {
				return err
			}
		case entry.Type().IsRegular():
			in, err := src.Open(childRel)
			if err != nil {
				return fmt.Errorf("reading %s: %w", shown, err)
			}
			err = copyFile(in, dst, childDst, shown)
			_ = in.Close() // read only
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is neither a file nor a directory", shown)
		}
	}
	return nil
}

// copyFile copies the open file in (named name in messages), which must be a regular file, to
// rel in dst.
func copyFile(in *os.File, dst *hostfs.Root, rel, name string) error {
	if err := checkRegular(in, name); err != nil {
		return err
	}
	var readErr error
	err := writeAtomic(dst, rel, func(w io.Writer) error {
		_, err := io.Copy(w, readerOnly{in, &readErr})
		return err
	})
	if readErr != nil {
		return fmt.Errorf("reading %s: %w", name, readErr)
	}
	if err != nil {
		return &writeError{path: filepath.Join(dst.Name(), rel), err: fmt.Errorf("writing %s: %w", filepath.Join(dst.Name(), rel), err)}
	}
	return nil
}

// readerOnly remembers the read errors of a copy, to blame the side that failed.
type readerOnly struct {
	r   io.Reader
	err *error
}

func (r readerOnly) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		*r.err = err
	}
	return n, err
}

// writeAtomic writes rel in root through hostfs.WriteFileAtomic, creating its directory, so a
// worker never reads half a data file or model.
func writeAtomic(root *hostfs.Root, rel string, write func(io.Writer) error) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, dirMode); err != nil {
			return err
		}
	}
	return hostfs.WriteFileAtomic(root, rel, fileMode, write)
}

// splitSamples returns the samples of an index file (rounds.SplitSamples).
func splitSamples(content []byte, format string) []string {
	return rounds.SplitSamples(content, format)
}
