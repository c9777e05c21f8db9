package gmclient

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAFileIsParsedAgainOnlyWhenItChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeFileAtomically(t, path, []byte("one"))
	cache := newFileCache(path, readToken)

	for range 5 {
		token, err := cache.get()
		require.NoError(t, err)
		require.Equal(t, "one", token)
	}
	require.Equal(t, 1, cache.loadCount(), "an unchanged file is read once")

	// The kubelet's rotation: a new file renamed over the old one (a new inode, same size).
	writeFileAtomically(t, path, []byte("two"))
	token, err := cache.get()
	require.NoError(t, err)
	require.Equal(t, "two", token)
	require.Equal(t, 2, cache.loadCount())

	// An edit in place, same inode: the size and the modification time change.
	require.NoError(t, os.WriteFile(path, []byte("three\n"), 0o600))
	token, err = cache.get()
	require.NoError(t, err)
	require.Equal(t, "three", token)

	// Same inode and size, a later modification time.
	require.NoError(t, os.WriteFile(path, []byte("four\n"), 0o600))
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
	token, err = cache.get()
	require.NoError(t, err)
	require.Equal(t, "four", token)
	require.Equal(t, 4, cache.loadCount())
}

func TestAFileThatCannotBeParsedIsTriedAgainAtEachGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	cache := newFileCache(path, readToken)

	_, err := cache.get()
	require.ErrorIs(t, err, errToken, "a missing file gets the parser's own error")
	require.ErrorIs(t, err, os.ErrNotExist)

	writeFileAtomically(t, path, []byte(" \n"))
	for range 2 {
		_, err = cache.get()
		require.ErrorIs(t, err, errToken)
		require.ErrorContains(t, err, "is empty")
	}
	require.Equal(t, 2, cache.loadCount(), "a failed parse is not cached")

	writeFileAtomically(t, path, []byte("good"))
	token, err := cache.get()
	require.NoError(t, err)
	require.Equal(t, "good", token)

	// The file goes away: the error is the parser's, and a returning file is read again.
	require.NoError(t, os.Remove(path))
	_, err = cache.get()
	require.True(t, errors.Is(err, os.ErrNotExist), "got %v", err)
	writeFileAtomically(t, path, []byte("back"))
	token, err = cache.get()
	require.NoError(t, err)
	require.Equal(t, "back", token)
}

func TestACABundleWithoutCertificatesIsRefusedAndNotCached(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.crt")
	writeFileAtomically(t, path, []byte("not a certificate"))
	cache := newFileCache(path, readCABundle)
	_, err := cache.get()
	require.ErrorContains(t, err, "no PEM certificate in it")

	newTestPKI(t).writeCA(t, path)
	pool, err := cache.get()
	require.NoError(t, err)
	require.NotNil(t, pool)
	again, err := cache.get()
	require.NoError(t, err)
	require.Same(t, pool, again, "an unchanged bundle is parsed once")
}
