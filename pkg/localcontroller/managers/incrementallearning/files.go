package incrementallearning

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
)

const (
	dirMode  os.FileMode = 0o755
	fileMode os.FileMode = 0o644
)

// hostFiles reads and writes host paths of the node through the rootfs mount: reads go through
// the Resolver (confined to the allowed data roots), writes through an os.Root opened on one of
// the write roots, so neither ".." nor a planted symlink leads the LC elsewhere on the node.
type hostFiles struct {
	rootfs     string
	resolver   *datasetindex.Resolver
	writeRoots []string
	maxBytes   int64
}

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
func (f *hostFiles) writeRoot(hostPath string) (*os.Root, string, error) {
	if err := checkHostPath(hostPath); err != nil {
		return nil, "", err
	}
	cleaned := path.Clean(hostPath)
	for _, root := range f.writeRoots {
		rel, below := strings.CutPrefix(cleaned, strings.TrimSuffix(root, "/")+"/")
		if !below || rel == "" {
			continue
		}
		opened, err := os.OpenRoot(filepath.Join(f.rootfs, root))
		if err != nil {
			return nil, "", fmt.Errorf("opening the write root %s: %w", root, err)
		}
		return opened, filepath.FromSlash(rel), nil
	}
	return nil, "", fmt.Errorf("%s is not below any directory this LC may write (%s)", hostPath, strings.Join(f.writeRoots, ", "))
}

// writeFile replaces the host file hostPath with content atomically, creating its directories.
func (f *hostFiles) writeFile(hostPath string, content []byte) error {
	root, rel, err := f.writeRoot(hostPath)
	if err != nil {
		return fmt.Errorf("writing %s: %w", hostPath, err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	if err := writeAtomic(root, rel, func(w io.Writer) error { _, err := w.Write(content); return err }); err != nil {
		return fmt.Errorf("writing %s: %w", hostPath, err)
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
		return fmt.Errorf("creating %s: %w", hostPath, err)
	}
	return nil
}

// readFile reads the host file hostPath, up to maxBytes.
func (f *hostFiles) readFile(hostPath string) ([]byte, error) {
	resolved, err := f.resolver.Resolve(hostPath)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(resolved)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", hostPath, err)
	}
	defer func() { _ = file.Close() }() // read only
	content, err := io.ReadAll(io.LimitReader(file, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", hostPath, err)
	}
	if int64(len(content)) > f.maxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", hostPath, f.maxBytes)
	}
	return content, nil
}

// copyInto copies the host file or directory src into dst (a directory opened as an os.Root)
// under the name name, replacing what is there file by file.
func (f *hostFiles) copyInto(src string, dst *os.Root, name string) error {
	resolved, err := f.resolver.Resolve(src)
	if err != nil {
		return err
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if !info.IsDir() {
		return copyFile(resolved, dst, name)
	}
	// The tree is walked inside an os.Root, so a symlink in it cannot lead out of the model.
	srcRoot, err := os.OpenRoot(resolved)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer func() { _ = srcRoot.Close() }() // a directory handle only
	return fs.WalkDir(srcRoot.FS(), ".", func(rel string, entry fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		target := filepath.Join(name, filepath.FromSlash(rel))
		switch {
		case entry.IsDir():
			return dst.MkdirAll(target, dirMode)
		case entry.Type().IsRegular():
			in, err := srcRoot.Open(filepath.FromSlash(rel))
			if err != nil {
				return err
			}
			defer func() { _ = in.Close() }() // read only
			return writeAtomic(dst, target, func(w io.Writer) error { _, err := io.Copy(w, in); return err })
		default:
			return fmt.Errorf("%s/%s is neither a file nor a directory", src, rel)
		}
	})
}

func copyFile(resolved string, dst *os.Root, name string) error {
	in, err := os.Open(resolved)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only
	return writeAtomic(dst, name, func(w io.Writer) error { _, err := io.Copy(w, in); return err })
}

// writeAtomic writes rel in root through a temporary file in the same directory and a rename, so
// a worker never reads half a data file or model.
func writeAtomic(root *os.Root, rel string, write func(io.Writer) error) (err error) {
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, dirMode); err != nil {
			return err
		}
	}
	suffix := make([]byte, 8)
	if _, err := rand.Read(suffix); err != nil {
		return fmt.Errorf("naming a temporary file: %w", err)
	}
	tmpName := filepath.Join(filepath.Dir(rel), "."+filepath.Base(rel)+".tmp-"+hex.EncodeToString(suffix))
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()          // already failing
			_ = root.Remove(tmpName) // a hidden leftover harms nothing
		}
	}()
	if err := write(tmp); err != nil {
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
	return nil
}

// splitSamples returns the samples of an index file: its non-blank lines, without the header
// line for csv.
func splitSamples(content []byte, format string) []string {
	lines := strings.Split(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n")
	// The last line is a sample only once it is terminated: a writer may be halfway through it.
	lines = lines[:len(lines)-1]
	if strings.EqualFold(format, "csv") && len(lines) > 0 {
		lines = lines[1:]
	}
	samples := make([]string, 0, len(lines))
	for _, line := range lines {
		if strings.TrimSpace(line) != "" {
			samples = append(samples, line)
		}
	}
	return samples
}

// mkdirAllUnder creates rel below the host directory hostRoot (an operator-configured root such
// as the hot-update root, created if missing and trusted like the rootfs mount).
func (f *hostFiles) mkdirAllUnder(hostRoot, rel string) error {
	base := filepath.Join(f.rootfs, hostRoot)
	if err := os.MkdirAll(base, dirMode); err != nil {
		return fmt.Errorf("creating %s: %w", hostRoot, err)
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return fmt.Errorf("opening %s: %w", hostRoot, err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	if err := root.MkdirAll(filepath.FromSlash(rel), dirMode); err != nil {
		return fmt.Errorf("creating %s/%s: %w", hostRoot, rel, err)
	}
	return nil
}

// openUnder opens rel below the host directory hostRoot; symlinks cannot lead out of hostRoot.
func (f *hostFiles) openUnder(hostRoot, rel string) (*os.Root, error) {
	root, err := os.OpenRoot(filepath.Join(f.rootfs, hostRoot))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", hostRoot, err)
	}
	defer func() { _ = root.Close() }() // the returned Root is opened separately
	dir, err := root.OpenRoot(filepath.FromSlash(rel))
	if err != nil {
		return nil, fmt.Errorf("opening %s/%s: %w", hostRoot, rel, err)
	}
	return dir, nil
}
