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
