//go:build linux

package datasetindex

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCounterRefusesDirectorySwappedForSymlink(t *testing.T) {
	probe, err := unix.Openat2(unix.AT_FDCWD, tempDir(t), &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("openat2 unavailable (%v): only the last path element is protected here", err)
	}
	require.NoError(t, err)
	require.NoError(t, unix.Close(probe))

	rootfs := hostTree(t, map[string]string{
		"/data/helmet/train.txt": "a\n",
		"/secret/train.txt":      "s1\ns2\ns3\n",
	}, nil)
	resolver, err := NewResolver(rootfs, []string{"/data"})
	require.NoError(t, err)
	path, err := resolver.Resolve("/data/helmet/train.txt")
	require.NoError(t, err)

	// Between Resolve and Update the directory becomes a link to a place outside the roots;
	// O_NOFOLLOW alone would not notice, since the last element is still a regular file.
	helmet := filepath.Join(rootfs, "data/helmet")
	require.NoError(t, os.Rename(helmet, helmet+".old"))
	require.NoError(t, os.Symlink(filepath.Join(rootfs, "secret"), helmet))

	_, _, err = NewCounter(FormatTxt, Options{}).Update(path)
	require.ErrorIs(t, err, ErrOutsideRoots)
	require.ErrorContains(t, err, path)
}
