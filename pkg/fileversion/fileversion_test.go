package fileversion

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func stat(t *testing.T, path string) Version {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return Of(info)
}

func TestAVersionChangesWithEveryKindOfReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(path, []byte("one"), 0o600))
	first := stat(t, path)
	require.True(t, first.Equal(stat(t, path)), "an untouched file keeps its version")
	require.False(t, first.Equal(Version{}), "a file is not the zero version")

	// Replaced by rename with the same size and the same modification time (cp -p, an archive).
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(path, mtime, mtime))
	first = stat(t, path)
	tmp := filepath.Join(dir, "f.new")
	require.NoError(t, os.WriteFile(tmp, []byte("two"), 0o600))
	require.NoError(t, os.Chtimes(tmp, mtime, mtime))
	require.NoError(t, os.Rename(tmp, path))
	renamed := stat(t, path)
	require.False(t, first.Equal(renamed), "a new inode is a new version")

	// Rewritten in place: a new size.
	require.NoError(t, os.WriteFile(path, []byte("three"), 0o600))
	resized := stat(t, path)
	require.False(t, renamed.Equal(resized))

	// Rewritten in place with the same size: a new modification time.
	require.NoError(t, os.WriteFile(path, []byte("four!"), 0o600))
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
	require.False(t, resized.Equal(stat(t, path)))
}
