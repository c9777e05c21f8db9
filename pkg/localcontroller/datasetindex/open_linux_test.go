//go:build linux

package datasetindex

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCounterRefusesDirectorySwappedForSymlink(t *testing.T) {
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

// OpenNoSymlinks refuses a link anywhere below the data root, also one that Open follows because
// it stays inside the roots, and names it a symbolic link.
func TestOpenNoSymlinksRefusesLinksBelowTheRoot(t *testing.T) {
	rootfs := hostTree(t, map[string]string{
		"/data/out/real/model.pb": "m",
		"/secret/model.pb":        "s",
	}, map[string]string{
		"/data/out/inside": "real",
		"/data/out/host":   "/",
	})
	resolver, err := NewResolver(rootfs, []string{"/data"})
	require.NoError(t, err)
	file, err := resolver.Open("/data/out/inside/model.pb")
	require.NoError(t, err, "Open follows a link that stays inside")
	require.NoError(t, file.Close())
	for _, hostPath := range []string{"/data/out/inside/model.pb", "/data/out/inside", "/data/out/host/secret/model.pb"} {
		_, err := resolver.OpenNoSymlinks(hostPath)
		require.ErrorIs(t, err, ErrOutsideRoots, hostPath)
		require.ErrorContains(t, err, "symbolic link", hostPath)
	}
	for _, hostPath := range []string{"/data/out/../../secret/model.pb", "/secret/model.pb"} {
		_, err := resolver.OpenNoSymlinks(hostPath)
		require.ErrorIs(t, err, ErrOutsideRoots, hostPath)
	}
	_, err = resolver.OpenNoSymlinks("/data/out/real/missing.pb")
	require.ErrorIs(t, err, ErrNotFound)
	for _, hostPath := range []string{"/data/out/real/model.pb", "/data/out/real", "/data"} {
		file, err := resolver.OpenNoSymlinks(hostPath)
		require.NoError(t, err, hostPath)
		require.NoError(t, file.Close())
	}
}

// A data root that is itself a link on the host (with its target configured as a root too) is
// resolved under the rootfs, as the host would, before the path below it is checked.
func TestOpenNoSymlinksThroughALinkedRoot(t *testing.T) {
	rootfs := hostTree(t, map[string]string{"/mnt/disk1/data/out/model.pb": "m"}, map[string]string{"/data": "/mnt/disk1/data"})
	resolver, err := NewResolver(rootfs, []string{"/data", "/mnt/disk1/data"})
	require.NoError(t, err)
	file, err := resolver.OpenNoSymlinks("/data/out/model.pb")
	require.NoError(t, err)
	require.NoError(t, file.Close())
}
