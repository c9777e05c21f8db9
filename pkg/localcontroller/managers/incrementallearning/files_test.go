package incrementallearning

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs/hostfstest"
)

const secretLine = "LC-TOKEN-SECRET"

// filesOn returns the manager's host files on a fresh rootfs holding /data (the allowed root) and
// /secret (outside it: think of the LC's own token).
func filesOn(t *testing.T) (*hostFiles, string) {
	t.Helper()
	rootfs, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	for hostPath, content := range map[string]string{
		"/data/ds/index.txt":            "a.jpg\nb.jpg\n",
		"/data/model/model.pb":          "trained",
		"/data/model/variables/v.index": "weights",
		"/secret/index.txt":             secretLine + "\n",
		"/secret/model.pb":              secretLine,
		"/secret/variables/v.index":     secretLine,
	} {
		full := filepath.Join(rootfs, hostPath)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	resolver, err := datasetindex.NewResolver(rootfs, []string{"/data"})
	require.NoError(t, err)
	return &hostFiles{rootfs: rootfs, resolver: resolver, writeRoots: []string{"/data"}, maxBytes: 1 << 20}, rootfs
}

// swapper keeps replacing the host directory dir by a symlink to target and back until stopped.
func swapper(t *testing.T, dir, target string) func() int64 {
	t.Helper()
	return hostfstest.SwapWithSymlink(t, dir, target, time.Microsecond)
}

// TestHostFilesSymlinkRace: while a worker keeps swapping a directory on the path between the
// real one and a symlink to /secret (absolute, in the host's terms, and also via the rootfs), the
// LC reads the dataset index, writes a round's data file from it, and copies a model file and a
// model directory into the output dir. Nothing of /secret may ever land in what it read or wrote.
func TestHostFilesSymlinkRace(t *testing.T) {
	for _, target := range []string{"/secret", "../secret"} {
		t.Run(strings.ReplaceAll(target, "/", "_"), func(t *testing.T) {
			files, rootfs := filesOn(t)
			linkTarget := target
			if filepath.IsAbs(target) {
				// The LC's path of the host's /secret: an absolute link that works from the LC.
				linkTarget = filepath.Join(rootfs, target)
			}
			stopIndex := swapper(t, filepath.Join(rootfs, "data/ds"), linkTarget)
			stopModel := swapper(t, filepath.Join(rootfs, "data/model"), linkTarget)
			deadline := time.Now().Add(1500 * time.Millisecond)
			reads, copies := 0, 0
			for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
				content, err := files.readFile("/data/ds/index.txt")
				if err == nil {
					reads++
					require.NotContains(t, string(content), secretLine, "iteration %d read the secret", i)
					require.NoError(t, files.writeFile("/data/out/data/train/1/data.txt", content))
				}
				root, rel, err := files.writeRoot("/data/out/deploy")
				require.NoError(t, err)
				if files.copyInto("/data/model/model.pb", root, filepath.Join(rel, "model.pb")) == nil {
					copies++
				}
				_ = files.copyInto("/data/model", root, filepath.Join(rel, "tree"))
				require.NoError(t, root.Close())
			}
			swapsIndex, swapsModel := stopIndex(), stopModel()
			t.Logf("%d reads, %d copies, %d+%d swaps", reads, copies, swapsIndex, swapsModel)
			require.Positive(t, swapsIndex)
			require.Positive(t, reads)
			require.Positive(t, copies)
			require.NoError(t, filepath.Walk(filepath.Join(rootfs, "data/out"), func(p string, info os.FileInfo, err error) error {
				require.NoError(t, err)
				if info.Mode().IsRegular() {
					content, err := os.ReadFile(p)
					require.NoError(t, err)
					require.NotContains(t, string(content), secretLine, "%s holds the secret", p)
				}
				return nil
			}))
		})
	}
}

func TestHostFilesRefuseSymlinks(t *testing.T) {
	files, rootfs := filesOn(t)
	data := filepath.Join(rootfs, "data")
	// Last element a link to a file outside; middle element a link (absolute, host terms) to a
	// directory outside; a link inside the root whose target climbs out with "..".
	require.NoError(t, os.Symlink("/secret/index.txt", filepath.Join(data, "last.txt")))
	require.NoError(t, os.Symlink("/secret", filepath.Join(data, "middle")))
	require.NoError(t, os.Symlink("../secret", filepath.Join(data, "climb")))
	for _, hostPath := range []string{"/data/last.txt", "/data/middle/index.txt", "/data/climb/index.txt", "/data/../secret/index.txt", "/secret/index.txt"} {
		content, err := files.readFile(hostPath)
		require.ErrorIs(t, err, datasetindex.ErrOutsideRoots, hostPath)
		require.Empty(t, content)
	}
	for _, hostPath := range []string{"/data/middle/x.txt", "/data/climb/x.txt", "/data/../secret/x.txt", "/secret/x.txt", "/data/last.txt/x"} {
		err := files.writeFile(hostPath, []byte("x"))
		require.Error(t, err, hostPath)
		var we *writeError
		require.True(t, errors.As(err, &we), "%s: a write-side error: %v", hostPath, err)
	}
	entries, err := os.ReadDir(filepath.Join(rootfs, "secret"))
	require.NoError(t, err)
	require.Len(t, entries, 3, "nothing was written into /secret")
	// A symlink planted inside the output tree is refused, not followed, when the LC writes through it.
	require.NoError(t, os.MkdirAll(filepath.Join(data, "out"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(rootfs, "secret"), filepath.Join(data, "out", "data")))
	err = files.writeFile("/data/out/data/train/1/data.txt", []byte("x"))
	require.Error(t, err)
	if hostfs.Mode() == hostfs.ModeBeneath {
		require.ErrorIs(t, err, hostfs.ErrOutside)
	}
	require.NoDirExists(t, filepath.Join(rootfs, "secret", "train"))
}
