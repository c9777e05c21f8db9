package datasetindex

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

// Open resolves hostPath (as Resolve) and opens it for reading beneath the allowed root it lies
// under, through package hostfs: a symlink swapped into the path after the resolution is not
// followed. The caller should check that it got the kind of file it expects.
func (r *Resolver) Open(hostPath string) (*os.File, error) {
	root, rel, err := r.openRootOf(hostPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }() // a directory handle only
	file, err := root.Open(rel)
	if err != nil {
		return nil, r.openError(hostPath, err)
	}
	return file, nil
}

// OpenRoot resolves the directory hostPath (as Resolve) and opens it as a hostfs.Root, beneath
// the allowed root it lies under.
func (r *Resolver) OpenRoot(hostPath string) (*hostfs.Root, error) {
	root, rel, err := r.openRootOf(hostPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }() // the returned Root is opened separately
	dir, err := root.OpenRoot(rel)
	if err != nil {
		return nil, r.openError(hostPath, err)
	}
	return dir, nil
}

// OpenNoSymlinks opens hostPath for reading beneath the allowed root it lies under (the longest,
// if roots nest) without following any symlink on the way from that root down to hostPath, not
// even one that stays inside the roots (Open follows those). It is the check for a host path a
// pod will mount: the kubelet follows every link of a hostPath volume's path on the host. An
// error for a symlink wraps ErrOutsideRoots and says "symbolic link".
func (r *Resolver) OpenNoSymlinks(hostPath string) (*os.File, error) {
	cleaned, err := r.checkText(hostPath)
	if err != nil {
		return nil, err
	}
	best := r.rootOf(cleaned)
	rel := strings.TrimPrefix(strings.TrimPrefix(cleaned, best), "/")
	if rel == "" {
		rel = "."
	}
	// The root itself may be a link on the host (configured with its target as a root too): it is
	// resolved as the host would, under the rootfs.
	resolvedRoot, err := r.resolveHost(best)
	if err != nil {
		return nil, fmt.Errorf("host path %q: resolving the data root %s: %w", hostPath, best, err)
	}
	root, err := hostfs.OpenRoot(r.inRootfs(resolvedRoot))
	if err != nil {
		return nil, fmt.Errorf("host path %q: opening the data root %s: %w", hostPath, best, err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	file, err := root.OpenNoSymlinks(filepath.FromSlash(rel))
	switch {
	case errors.Is(err, hostfs.ErrOutside):
		return nil, fmt.Errorf("host path %s: a symbolic link on the path below the data root %s: %w: %w", hostPath, best, ErrOutsideRoots, err)
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("opening host path %s: %w: %w", hostPath, ErrNotFound, err)
	case err != nil:
		// os.Root (without openat2) refuses a link with an absolute target with an error of its own.
		return nil, fmt.Errorf("host path %s: not opened without following a symbolic link below the data root %s: %w: %w", hostPath, best, ErrOutsideRoots, err)
	}
	return file, nil
}

// rootOf returns the longest allowed root the clean host path p lies under ("" if none).
func (r *Resolver) rootOf(p string) string {
	best := ""
	for _, root := range r.allowedRoots {
		if (root == "/" || p == root || strings.HasPrefix(p, root+"/")) && len(root) > len(best) {
			best = root
		}
	}
	return best
}

// openRootOf resolves hostPath and opens the allowed root its resolution lies under (the
// longest, if roots nest); rel is the resolution relative to that root.
func (r *Resolver) openRootOf(hostPath string) (*hostfs.Root, string, error) {
	resolved, err := r.resolveHost(hostPath)
	if err != nil {
		return nil, "", err
	}
	best := r.rootOf(resolved)
	if best == "" {
		// Unreachable: resolveHost only returns paths inside a root.
		return nil, "", fmt.Errorf("host path %q resolves to %q, outside the allowed data roots: %w", hostPath, resolved, ErrOutsideRoots)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(resolved, best), "/")
	if rel == "" {
		rel = "."
	}
	root, err := hostfs.OpenRoot(r.inRootfs(best))
	if err != nil {
		return nil, "", fmt.Errorf("host path %q: opening the data root %s: %w", hostPath, best, err)
	}
	return root, filepath.FromSlash(path.Clean(rel)), nil
}

// openError names the host path and maps hostfs's refusals to this package's sentinels.
func (r *Resolver) openError(hostPath string, err error) error {
	switch {
	case errors.Is(err, hostfs.ErrOutside):
		return fmt.Errorf("opening host path %s: it changed since it was resolved (a symlink on the path): %w: %w", hostPath, ErrOutsideRoots, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("opening host path %s: %w: %w", hostPath, ErrNotFound, err)
	}
	return fmt.Errorf("opening host path %s: %w", hostPath, err)
}
