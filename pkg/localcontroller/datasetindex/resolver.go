package datasetindex

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinkHops bounds symlink chains the way Linux does (MAXSYMLINKS), so a loop ends in an
// error instead of spinning.
const maxSymlinkHops = 40

// Resolver maps host paths to paths inside the LC's filesystem and refuses anything outside the
// allowed roots.
//
// Symlinks are resolved one path element at a time under the rootfs, as the host's kernel would
// resolve them, because the LC sees the host's links without the host's "/": a link whose target
// is /data/x means <rootfs>/data/x, not the LC's own /data/x. The walk may only enter an allowed
// root, a directory inside one, or a directory on the way down to one; a link that leads
// anywhere else is refused at once, even if a further link would lead back inside, so the walk
// never probes the rest of the host (not even for existence).
//
// Both the requested path and the path its symlinks lead to must be under an allowed root: if an
// allowed root is itself a symlink on the host (say /data -> /mnt/disk1/data), configure its
// target as a root too.
//
// A Resolver holds no mutable state and is safe for concurrent use.
type Resolver struct {
	// rootfs is the LC's path of the host's "/", with its own symlinks resolved, so that every
	// path Resolve returns is free of symlinks and can be opened with RESOLVE_NO_SYMLINKS.
	rootfs string
	// allowedRoots are host paths: absolute, cleaned.
	allowedRoots []string
}

// NewResolver returns a Resolver for host paths mounted under rootfs (the LC's
// ROOTFS_MOUNT_DIR; "/" when the LC runs on the host itself) that may read only under the given
// host directories. Each root must be absolute and already clean (no trailing "/", no "." or
// ".." elements) so that a typo in the configuration is reported rather than silently
// reinterpreted; the error names the bad root.
func NewResolver(rootfs string, allowedRoots []string) (*Resolver, error) {
	if !filepath.IsAbs(rootfs) {
		return nil, fmt.Errorf("rootfs mount dir %q is not an absolute path", rootfs)
	}
	realRootfs, err := filepath.EvalSymlinks(rootfs)
	if err != nil {
		return nil, fmt.Errorf("resolving rootfs mount dir %q: %w", rootfs, err)
	}
	info, err := os.Stat(realRootfs)
	if err != nil {
		return nil, fmt.Errorf("checking rootfs mount dir %q: %w", rootfs, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("rootfs mount dir %q is not a directory", rootfs)
	}
	if len(allowedRoots) == 0 {
		return nil, errors.New("no allowed data roots configured: no dataset index could be read")
	}
	roots := make([]string, 0, len(allowedRoots))
	for _, root := range allowedRoots {
		if !path.IsAbs(root) {
			return nil, fmt.Errorf("allowed data root %q is not an absolute host path", root)
		}
		if path.Clean(root) != root {
			return nil, fmt.Errorf("allowed data root %q is not clean (want %q)", root, path.Clean(root))
		}
		roots = append(roots, root)
	}
	return &Resolver{rootfs: realRootfs, allowedRoots: roots}, nil
}

// Resolve returns the path to open for hostPath. It refuses: relative paths, any ".." element
// (even if it would stay inside), paths not under an allowed root, and paths whose symlinks
// (resolved within rootfs: an absolute link target is interpreted relative to rootfs, as on the
// host) lead outside the allowed roots. Errors wrap ErrOutsideRoots (or ErrNotFound for a
// missing file) and name the path.
//
// The returned path contains no symlinks at the time of the call. The file may still be
// replaced afterwards, so open it with Counter.Update (which refuses symlinks) rather than
// os.Open, and resolve again before every count rather than caching the result. To read or copy
// a host path, use Open or OpenRoot, which resolve and then open beneath the allowed root.
func (r *Resolver) Resolve(hostPath string) (string, error) {
	resolved, err := r.resolveHost(hostPath)
	if err != nil {
		return "", err
	}
	return r.inRootfs(resolved), nil
}

// resolveHost is Resolve, returning the resolved host path rather than the LC's path of it.
func (r *Resolver) resolveHost(hostPath string) (string, error) {
	cleaned, err := r.checkText(hostPath)
	if err != nil {
		return "", err
	}
	return r.walk(hostPath, cleaned)
}

// checkText applies the textual checks of Resolve (absolute, no NUL, no "..", under an allowed
// root) and returns the cleaned path.
func (r *Resolver) checkText(hostPath string) (string, error) {
	if strings.IndexByte(hostPath, 0) >= 0 {
		return "", fmt.Errorf("host path %q contains a NUL byte: %w", hostPath, ErrOutsideRoots)
	}
	if !path.IsAbs(hostPath) {
		return "", fmt.Errorf("host path %q is not absolute: %w", hostPath, ErrOutsideRoots)
	}
	// ".." is refused even when it would stay inside: a URL that needs it is a mistake or a probe,
	// and refusing it keeps the check independent of how the directories happen to be linked.
	for _, elem := range strings.Split(hostPath, "/") {
		if elem == ".." {
			return "", fmt.Errorf("host path %q contains a \"..\" element: %w", hostPath, ErrOutsideRoots)
		}
	}
	cleaned := path.Clean(hostPath)
	if !r.insideRoot(cleaned) {
		return "", fmt.Errorf("host path %q is not under any allowed data root %q: %w", hostPath, r.allowedRoots, ErrOutsideRoots)
	}
	return cleaned, nil
}

// walk resolves every symlink of cleaned under the rootfs and returns the resulting host path.
// hostPath is the caller's original, for error messages.
func (r *Resolver) walk(hostPath, cleaned string) (string, error) {
	pending := splitPath(cleaned)
	current := "/"
	hops := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			// Only link targets bring ".." here. current never contains a symlink, so its lexical
			// parent is its real parent, as the kernel would find it.
			current = path.Dir(current)
			continue
		}
		next := path.Join(current, elem)
		if !r.insideRoot(next) && !r.aboveRoot(next) {
			// Only a symlink target can steer the walk here: the cleaned path itself is inside.
			return "", fmt.Errorf("host path %q: a symlink leads to %q, outside the allowed data roots %q: %w",
				hostPath, next, r.allowedRoots, ErrOutsideRoots)
		}
		onDisk := r.inRootfs(next)
		info, err := os.Lstat(onDisk)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return "", fmt.Errorf("host path %q: %q does not exist: %w", hostPath, next, ErrNotFound)
			}
			return "", fmt.Errorf("host path %q: inspecting %q: %w", hostPath, next, err)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			current = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", fmt.Errorf("host path %q: more than %d symlinks (a loop?) at %q: %w",
				hostPath, maxSymlinkHops, next, ErrOutsideRoots)
		}
		target, err := os.Readlink(onDisk)
		if err != nil {
			return "", fmt.Errorf("host path %q: reading symlink %q: %w", hostPath, next, err)
		}
		if target == "" {
			return "", fmt.Errorf("host path %q: symlink %q has an empty target: %w", hostPath, next, ErrNotFound)
		}
		if path.IsAbs(target) {
			// An absolute target names a host path, i.e. one under the rootfs, not the LC's own.
			current = "/"
		}
		pending = append(splitPath(target), pending...)
	}
	if !r.insideRoot(current) {
		// A target such as ".." can end the walk on a directory above the roots.
		return "", fmt.Errorf("host path %q resolves to %q, outside the allowed data roots %q: %w",
			hostPath, current, r.allowedRoots, ErrOutsideRoots)
	}
	return current, nil
}

func (r *Resolver) inRootfs(hostPath string) string {
	return filepath.Join(r.rootfs, filepath.FromSlash(hostPath))
}

// insideRoot reports whether the clean host path p is an allowed root or lies below one.
func (r *Resolver) insideRoot(p string) bool {
	for _, root := range r.allowedRoots {
		if root == "/" || p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// aboveRoot reports whether the clean host path p is a directory on the way down to an allowed
// root, which the walk must be able to pass through.
func (r *Resolver) aboveRoot(p string) bool {
	if p == "/" {
		return true
	}
	for _, root := range r.allowedRoots {
		if strings.HasPrefix(root, p+"/") {
			return true
		}
	}
	return false
}

// splitPath splits a slash-separated path into its elements; empty elements (from leading,
// trailing or doubled slashes) are left in and skipped by the walk.
func splitPath(p string) []string {
	return strings.Split(p, "/")
}
