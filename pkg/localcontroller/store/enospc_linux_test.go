package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory, or skips the test without root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) }) // test scratch
	return dir
}

// A full disk: Enqueue fails with an error (no panic, no half-written entry), every report it
// accepted before is still there after a restart on the still-full disk, and once space is
// back the store takes reports again with sequence numbers that continue.
func TestFullDiskKeepsAcceptedReports(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "lc.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	var accepted []uint64
	var fullErr error
	for i := range 10000 {
		seq, err := s.Enqueue(bytes.Repeat([]byte{byte(i)}, 8<<10))
		if err != nil {
			fullErr = err
			break
		}
		accepted = append(accepted, seq)
	}
	require.Error(t, fullErr, "a 2 MiB disk took 80 MiB of reports")
	t.Logf("full after %d reports: %v", len(accepted), fullErr)
	require.NotEmpty(t, accepted)
	// A state write on the full disk fails cleanly too, and the store is still readable.
	_ = s.PutState("ns", "k", bytes.Repeat([]byte("x"), 64<<10))
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err, "the store must open on a full disk")
	require.Empty(t, s.Quarantined())
	pending, err := s.Pending(0, len(accepted)+10)
	require.NoError(t, err)
	require.Len(t, pending, len(accepted), "accepted reports lost on a full disk")
	for i, e := range pending {
		require.Equal(t, accepted[i], e.Seq)
		require.Equal(t, bytes.Repeat([]byte{byte(i)}, 8<<10), e.Payload, "report %d", i)
	}
	require.NoError(t, s.Close())

	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=16m"), "growing the tmpfs")
	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	seq, err := s.Enqueue([]byte("space is back"))
	require.NoError(t, err, "the store does not take reports after space came back")
	require.Greater(t, seq, accepted[len(accepted)-1], fmt.Sprintf("sequence went back: %d", seq))
}
