package localsedna

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// lcStoreDir is the host path of the LC's store (build/lc's hostPath volume).
const lcStoreDir = "/var/lib/sedna"

// fillFile is the file FillEdgeStore fills a store's file system with, beside the LC's files.
const fillFile = ".localsedna-fill"

// mountStore mounts a tmpfs of size bytes on dir.
func mountStore(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		return fmt.Errorf("mounting a %d-byte tmpfs on %s (root only): %w", size, dir, err)
	}
	return nil
}

// unmountUnder unmounts every mount point below dir, deepest first: the stores of this local
// Sedna, also those a killed run left mounted.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	var points []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		// Field 5 is the mount point, with spaces and the like octal-escaped; ours have none.
		if strings.HasPrefix(fields[4], prefix) {
			points = append(points, fields[4])
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// FillEdgeStore fills the file system of node's LC store (Options.EdgeStoreSize) until a write
// fails with ENOSPC, and returns how many bytes it wrote; FreeEdgeStore gives them back.
func (s *Sedna) FillEdgeStore(node string) (int64, error) {
	n, ok := s.Node(node)
	if !ok {
		return 0, fmt.Errorf("no node %s", node)
	}
	if s.opts.EdgeStoreSize <= 0 {
		return 0, errors.New("the edge stores are not on file systems of their own (Options.EdgeStoreSize)")
	}
	f, err := os.OpenFile(filepath.Join(n.HostPath(lcStoreDir), fillFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // what is written is what matters, checked below
	buf := make([]byte, 64<<10)
	var written int64
	for {
		m, err := f.Write(buf)
		written += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			// Smaller writes take the last partial block.
			if len(buf) > 512 {
				buf = buf[:len(buf)/8]
				continue
			}
			return written, nil
		}
		if err != nil {
			return written, err
		}
		if m < len(buf) {
			return written, io.ErrShortWrite
		}
	}
}

// FreeEdgeStore removes what FillEdgeStore wrote on node's store.
func (s *Sedna) FreeEdgeStore(node string) error {
	n, ok := s.Node(node)
	if !ok {
		return fmt.Errorf("no node %s", node)
	}
	err := os.Remove(filepath.Join(n.HostPath(lcStoreDir), fillFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
