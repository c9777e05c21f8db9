package modelfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// load reads a "model" that is the file's text; "bad" fails to load.
func load(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(string(data)) == "bad" {
		return "", errors.New("corrupt model")
	}
	return string(data), nil
}

func write(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	require.NoError(t, os.Chtimes(path, mtime, mtime))
}

func TestWatcherReloadsChangedFilesAndKeepsTheOldModelOnABadOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model")
	base := time.Now().Add(-time.Hour)
	write(t, path, "v1", base)
	w, err := NewWatcher(path, load)
	require.NoError(t, err)
	require.Equal(t, "v1", w.Current())
	require.EqualValues(t, 1, w.Loads())

	changed, err := w.Reload()
	require.NoError(t, err)
	require.False(t, changed, "an unchanged file must not be loaded again")

	write(t, path, "v2", base.Add(time.Second))
	changed, err = w.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "v2", w.Current())

	write(t, path, "bad", base.Add(2*time.Second))
	_, err = w.Reload()
	require.ErrorContains(t, err, "corrupt model")
	require.ErrorContains(t, err, path)
	require.Equal(t, "v2", w.Current(), "a bad file keeps the previous model")
	require.EqualValues(t, 2, w.Loads())
}

func TestWatcherRunPicksUpAReplacedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model")
	write(t, path, "v1", time.Now().Add(-time.Hour))
	w, err := NewWatcher(path, load)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, 10*time.Millisecond); close(done) }()
	write(t, path, "v2-longer", time.Now())
	require.Eventually(t, func() bool { return w.Current() == "v2-longer" }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}

func TestNewWatcherNeedsALoadableFile(t *testing.T) {
	_, err := NewWatcher("", load)
	require.ErrorContains(t, err, "MODEL_URL")
	_, err = NewWatcher(filepath.Join(t.TempDir(), "missing"), load)
	require.Error(t, err)
	path := filepath.Join(t.TempDir(), "model")
	write(t, path, "bad", time.Now())
	_, err = NewWatcher(path, load)
	require.ErrorContains(t, err, "corrupt model")
}

func TestWatcherReloadsAModelCopiedInWithTheOldSizeAndTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model")
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	write(t, path, "v1", mtime)
	w, err := NewWatcher(path, load)
	require.NoError(t, err)

	// A redeploy that keeps the file's time (cp -p, an archive) and happens to keep its size.
	write(t, filepath.Join(dir, "model.new"), "v2", mtime)
	require.NoError(t, os.Rename(filepath.Join(dir, "model.new"), path))
	changed, err := w.Reload()
	require.NoError(t, err)
	require.True(t, changed, "a new file in the model's place is a new model")
	require.Equal(t, "v2", w.Current())
}
