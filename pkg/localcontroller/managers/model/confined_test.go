package model

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs/hostfstest"
)

// TestWriteHotUpdateConfigRefusesALinkToAnotherJobsDir: a worker of one job that can write its
// own hot-update directory's parent entry must not redirect the LC's write into another job's
// directory, which lies inside the hot-update root too (os.Root alone would follow that link).
func TestWriteHotUpdateConfigRefusesALinkToAnotherJobsDir(t *testing.T) {
	if hostfs.Mode() != hostfs.ModeBeneath {
		t.Skip("openat2 unavailable: the os.Root fallback follows links that stay inside the root (see package hostfs)")
	}
	m, rootfs := newHotUpdateManager(t)
	kindDir := filepath.Join(rootfs, filepath.Dir(jobDir))
	other := filepath.Join(kindDir, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.Symlink("other", filepath.Join(kindDir, "helmet")))

	err := m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", time.Now())
	require.ErrorIs(t, err, hostfs.ErrOutside)
	entries, readErr := os.ReadDir(other)
	require.NoError(t, readErr)
	require.Empty(t, entries, "nothing may be written through the symlink")
}

// TestWriteHotUpdateConfigSymlinkRace swaps the job's directory between a real directory and a
// link to a directory outside the hot-update root while the config is written again and again:
// nothing may ever land outside.
func TestWriteHotUpdateConfigSymlinkRace(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	outside := filepath.Join(rootfs, "etc")
	require.NoError(t, os.MkdirAll(outside, 0o755))
	dir := filepath.Join(rootfs, jobDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))

	stop := hostfstest.SwapWithSymlink(t, dir, outside, 0)
	written := 0
	deadline := time.Now().Add(time.Second)
	for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
		if m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", time.Now()) == nil {
			written++
		}
	}
	swaps := stop()
	t.Logf("%d writes, %d swaps", written, swaps)
	require.Positive(t, swaps)
	require.Positive(t, written)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing may be written outside the hot-update root")
}
