package hostfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// modes runs test once per confinement mechanism this machine has: openat2 (when the kernel
// offers it) and the os.Root fallback (always).
func modes(t *testing.T, test func(t *testing.T, mode string)) {
	t.Helper()
	if beneathAvailable() {
		t.Run(ModeBeneath, func(t *testing.T) { test(t, ModeBeneath) })
	} else {
		t.Logf("openat2 unavailable here: only the %s fallback is tested", ModeOSRoot)
	}
	t.Run(ModeOSRoot, func(t *testing.T) {
		forceFallback = true
		t.Cleanup(func() { forceFallback = false })
		require.Equal(t, ModeOSRoot, Mode())
		test(t, ModeOSRoot)
	})
}

const secret = "TOP-SECRET-TOKEN"

// tree makes <tmp>/root with a few files and <tmp>/outside/secret.txt, and returns both dirs.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, dir := range []string{filepath.Join(root, "a", "b"), outside} {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "b", "file.txt"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "b", "file.txt"), []byte(secret), 0o644))
	return root, outside
}

func openRoot(t *testing.T, dir string) *Root {
	t.Helper()
	root, err := OpenRoot(dir)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, root.Close()) })
	return root
}

func read(root *Root, rel string) (string, error) {
	file, err := root.Open(rel)
	if err != nil {
		return "", err
	}
	defer func() { _ = file.Close() }()
	content, err := io.ReadAll(file)
	return string(content), err
}

func TestOpenReadsAndWritesBelowTheRoot(t *testing.T) {
	modes(t, func(t *testing.T, _ string) {
		dir, _ := tree(t)
		root := openRoot(t, dir)
		content, err := read(root, filepath.Join("a", "b", "file.txt"))
		require.NoError(t, err)
		require.Equal(t, "inside", content)

		require.NoError(t, root.MkdirAll(filepath.Join("x", "y", "z"), 0o755))
		require.NoError(t, root.MkdirAll(filepath.Join("x", "y", "z"), 0o755), "MkdirAll of an existing directory")
		require.NoError(t, WriteFileAtomic(root, filepath.Join("x", "y", "z", "f.txt"), 0o640, func(w io.Writer) error {
			_, err := io.WriteString(w, "new")
			return err
		}))
		written, err := os.ReadFile(filepath.Join(dir, "x", "y", "z", "f.txt"))
		require.NoError(t, err)
		require.Equal(t, "new", string(written))
		info, err := os.Stat(filepath.Join(dir, "x", "y", "z", "f.txt"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o640), info.Mode().Perm(), "the mode is set whatever the umask")
		entries, err := os.ReadDir(filepath.Join(dir, "x", "y", "z"))
		require.NoError(t, err)
		require.Len(t, entries, 1, "no temporary file left behind")

		require.NoError(t, root.Rename(filepath.Join("x", "y", "z", "f.txt"), filepath.Join("a", "g.txt")))
		content, err = read(root, filepath.Join("a", "g.txt"))
		require.NoError(t, err)
		require.Equal(t, "new", content)

		sub, err := root.OpenRoot("x")
		require.NoError(t, err)
		require.NoError(t, sub.MkdirAll("w", 0o755))
		require.NoError(t, sub.Close())
		require.DirExists(t, filepath.Join(dir, "x", "w"))

		require.NoError(t, root.Remove(filepath.Join("a", "g.txt")))
		require.NoFileExists(t, filepath.Join(dir, "a", "g.txt"))
		require.NoError(t, root.RemoveAll("x"))
		require.NoDirExists(t, filepath.Join(dir, "x"))
		require.NoError(t, root.RemoveAll("x"), "RemoveAll of a missing path")
	})
}

func TestRefusesPathsLeavingTheRoot(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, outside := tree(t)
		root := openRoot(t, dir)
		// The last element is a link to a file outside.
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "last")))
		// A middle element is a link to a directory outside (absolute target).
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "abs")))
		// A middle element with a relative target climbing out.
		require.NoError(t, os.Symlink(filepath.Join("..", "outside"), filepath.Join(dir, "rel")))

		for _, rel := range []string{
			"last",
			filepath.Join("abs", "secret.txt"),
			filepath.Join("rel", "secret.txt"),
			filepath.Join("..", "outside", "secret.txt"),
			filepath.Join("a", "..", "..", "outside", "secret.txt"),
			filepath.Join(outside, "secret.txt"),
		} {
			content, err := read(root, rel)
			require.Error(t, err, "reading %s", rel)
			require.NotContains(t, content, secret)
			require.NotContains(t, err.Error(), secret)

			_, err = root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			require.Error(t, err, "writing %s", rel)
			require.Error(t, root.MkdirAll(filepath.Join(rel, "sub"), 0o755), "mkdir below %s", rel)
			require.Error(t, root.Rename(filepath.Join("a", "b", "file.txt"), filepath.Join(rel, "moved")), "rename into %s", rel)
			_, err = root.OpenRoot(rel)
			require.Error(t, err, "open root %s", rel)
		}
		for _, rel := range []string{filepath.Join("..", "outside"), "/etc"} {
			require.ErrorIs(t, root.MkdirAll(rel, 0o755), ErrOutside, rel)
			require.ErrorIs(t, root.RemoveAll(rel), ErrOutside, rel)
		}
		// The secret is untouched and nothing was created outside.
		content, err := os.ReadFile(filepath.Join(outside, "secret.txt"))
		require.NoError(t, err)
		require.Equal(t, secret, string(content))
		entries, err := os.ReadDir(outside)
		require.NoError(t, err)
		require.Len(t, entries, 2)

		// RemoveAll of a link removes the link, not what it points to.
		require.NoError(t, root.RemoveAll("abs"))
		require.FileExists(t, filepath.Join(outside, "secret.txt"))
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "a", "inner")))
		require.NoError(t, root.RemoveAll("a"))
		require.FileExists(t, filepath.Join(outside, "secret.txt"))
		require.NoDirExists(t, filepath.Join(dir, "a"))
	})
}

// TestSymlinkInsideTheRoot shows the documented difference between the two mechanisms: openat2
// refuses any symlink, os.Root follows one that stays inside.
func TestSymlinkInsideTheRoot(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, _ := tree(t)
		root := openRoot(t, dir)
		require.NoError(t, os.Symlink("a", filepath.Join(dir, "alias")))
		content, err := read(root, filepath.Join("alias", "b", "file.txt"))
		if mode == ModeBeneath {
			require.ErrorIs(t, err, ErrOutside)
			require.ErrorContains(t, err, filepath.Join(dir, "alias", "b", "file.txt"))
			return
		}
		require.NoError(t, err)
		require.Equal(t, "inside", content)
	})
}

// TestSymlinkRace swaps a directory on the path between a real directory and a symlink to a
// directory outside the root while files are read through it and copied below the root: the
// secret outside must never be read nor land in a copy.
func TestSymlinkRace(t *testing.T) {
	modes(t, func(t *testing.T, _ string) {
		dir, outside := tree(t)
		root := openRoot(t, dir)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "out"), 0o755))
		realDir := filepath.Join(dir, "a", "b")
		parked := filepath.Join(dir, "a", "b.real")

		var stop atomic.Bool
		var swaps atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// real dir -> symlink to outside -> real dir again.
				if os.Rename(realDir, parked) != nil {
					continue
				}
				_ = os.Symlink(filepath.Join(outside, "b"), realDir)
				swaps.Add(1)
				_ = os.Remove(realDir)
				_ = os.Rename(parked, realDir)
			}
		}()
		deadline := time.Now().Add(2 * time.Second)
		read := 0
		for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
			in, err := root.Open(filepath.Join("a", "b", "file.txt"))
			if err != nil {
				continue
			}
			err = WriteFileAtomic(root, filepath.Join("out", "copy.txt"), 0o644, func(w io.Writer) error {
				_, err := io.Copy(w, in)
				return err
			})
			_ = in.Close()
			if err != nil {
				continue
			}
			read++
			copied, err := os.ReadFile(filepath.Join(dir, "out", "copy.txt"))
			require.NoError(t, err)
			require.NotContains(t, string(copied), secret, "iteration %d copied the secret", i)
			require.Equal(t, "inside", string(copied))
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d copies, %d swaps", read, swaps.Load())
		require.Positive(t, swaps.Load(), "the race never swapped")
		require.Positive(t, read, "no copy ever succeeded")
		entries, err := os.ReadDir(filepath.Join(outside, "b"))
		require.NoError(t, err)
		require.Len(t, entries, 1, "nothing was written outside")
	})
}

func TestOpenNoSymlinks(t *testing.T) {
	modes(t, func(t *testing.T, _ string) {
		dir, outside := tree(t)
		dir, err := filepath.EvalSymlinks(dir)
		require.NoError(t, err)
		file, err := OpenNoSymlinks(filepath.Join(dir, "a", "b", "file.txt"))
		require.NoError(t, err)
		require.NoError(t, file.Close())
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "abs")))
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "last")))
		for _, p := range []string{filepath.Join(dir, "abs", "secret.txt"), filepath.Join(dir, "last")} {
			_, err := OpenNoSymlinks(p)
			require.Error(t, err, p)
			require.True(t, errors.Is(err, ErrOutside), "%s: %v", p, err)
			require.False(t, strings.Contains(err.Error(), secret))
		}
	})
}

func TestCheckWritable(t *testing.T) {
	modes(t, func(t *testing.T, _ string) {
		dir, _ := tree(t)
		require.NoError(t, CheckWritable(dir))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "the probe file is removed")
		require.ErrorIs(t, CheckWritable(filepath.Join(dir, "missing")), os.ErrNotExist)
	})
}

// OpenNoSymlinks refuses a symlink anywhere on the path, also one that stays below the root
// (which the os.Root fallback's Open follows), in every mode.
func TestOpenNoSymlinksRefusesLinksThatStayInside(t *testing.T) {
	modes(t, func(t *testing.T, _ string) {
		dir, outside := tree(t)
		require.NoError(t, os.Symlink("a", filepath.Join(dir, "inner")))
		require.NoError(t, os.Symlink("../a/b", filepath.Join(dir, "a", "up")))
		require.NoError(t, os.Symlink("b/file.txt", filepath.Join(dir, "a", "last")))
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "outer")))
		root := openRoot(t, dir)
		for _, rel := range []string{"inner", "inner/b", "inner/b/file.txt", "a/up", "a/last", "outer", "outer/b/file.txt"} {
			file, err := root.OpenNoSymlinks(rel)
			if err == nil {
				_ = file.Close()
			}
			if rel == "outer" || rel == "outer/b/file.txt" {
				require.Error(t, err, rel) // os.Root refuses an absolute target with an error of its own
				continue
			}
			require.ErrorIs(t, err, ErrOutside, rel)
		}
		for _, rel := range []string{".", "a", "a/b", "a/b/file.txt"} {
			file, err := root.OpenNoSymlinks(rel)
			require.NoError(t, err, rel)
			require.NoError(t, file.Close())
		}
	})
}
