package realnode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// An owned path that exists is refused by name; the others are recorded, and Release removes
// exactly what did not exist at the claim — owned paths, missing shared ones, missing parents —
// and leaves what did.
func TestHostPathsClaimAndRelease(t *testing.T) {
	root := t.TempDir()
	p := func(elem ...string) string { return filepath.Join(append([]string{root}, elem...)...) }
	require.NoError(t, os.MkdirAll(p("data", "other"), 0o755))
	require.NoError(t, os.MkdirAll(p("var", "lib", "sedna"), 0o755))

	_, err := ClaimHostPaths([]string{p("var", "lib", "sedna"), p("data", "mnist")}, nil)
	require.ErrorContains(t, err, p("var", "lib", "sedna"), "an existing owned path must be refused by name")
	require.NotContains(t, err.Error(), p("data", "mnist"))
	require.NoError(t, os.Remove(p("var", "lib", "sedna")))

	_, err = ClaimHostPaths([]string{"relative/path"}, nil)
	require.Error(t, err)

	owned := []string{p("var", "lib", "sedna"), p("data", "mnist"), p("kubelet", "device-plugins", "kubelet.sock"), p("kubelet", "pki")}
	shared := []string{p("data"), p("scratch")}
	h, err := ClaimHostPaths(owned, shared)
	require.NoError(t, err)
	// The paths part of SnapshotHost (the rest needs root and iptables).
	snapshot := func() *Host { return &Host{Paths: existing(h.Watched())} }
	before := snapshot()

	// What a run makes: the LC's store, the demo's data beside another program's, a kubelet's
	// socket and certificates, a shared directory that was missing.
	for _, d := range []string{p("var", "lib", "sedna"), p("data", "mnist", "models"), p("kubelet", "device-plugins"), p("kubelet", "pki"), p("scratch")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for _, f := range []string{p("var", "lib", "sedna", "lc.db"), p("data", "mnist", "models", "edge.model"), p("kubelet", "device-plugins", "kubelet.sock"), p("kubelet", "pki", "kubelet.crt")} {
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
	}
	during := snapshot()
	var added []string
	for _, d := range before.Diff(during) {
		if len(d) > 6 && d[:6] == "path: " {
			added = append(added, d)
		}
	}
	require.ElementsMatch(t, []string{
		"path: added " + p("var", "lib", "sedna"), "path: added " + p("data", "mnist"),
		"path: added " + p("kubelet"), "path: added " + p("kubelet", "device-plugins"),
		"path: added " + p("kubelet", "device-plugins", "kubelet.sock"), "path: added " + p("kubelet", "pki"),
		"path: added " + p("scratch"),
	}, added, "the snapshot must report every path the run made as a leftover")
	require.ElementsMatch(t, added, before.Leftovers(during, p("run")), "Leftovers must count the paths")

	require.NoError(t, h.Release())
	for _, gone := range []string{p("var", "lib", "sedna"), p("data", "mnist"), p("kubelet"), p("scratch")} {
		_, err := os.Lstat(gone)
		require.True(t, os.IsNotExist(err), "%s is left", gone)
	}
	for _, kept := range []string{p("data", "other"), p("var", "lib")} {
		_, err := os.Lstat(kept)
		require.NoError(t, err, "%s existed before and must stay", kept)
	}
	after := snapshot()
	for _, d := range before.Diff(after) {
		require.NotContains(t, d, "path: ", "left after Release")
	}
	require.NoError(t, h.Release(), "a second Release finds nothing to do")
}

// While one holder has LockPath another cannot take it; once released, it can.
func TestLockHostIsExclusive(t *testing.T) {
	old := LockPath
	LockPath = filepath.Join(t.TempDir(), "nodes.lock")
	t.Cleanup(func() { LockPath = old })

	held, err := lockHost()
	require.NoError(t, err)
	other, err := os.OpenFile(LockPath, os.O_RDWR, 0)
	require.NoError(t, err)
	defer func() { _ = other.Close() }()
	err = syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	require.True(t, errors.Is(err, syscall.EWOULDBLOCK), "the lock is held, yet another took it (%v)", err)

	// A Cluster's Stop releases it (and a second Stop is a no-op).
	c := &Cluster{lock: held}
	require.NoError(t, c.Stop(context.Background()))
	require.NoError(t, c.Stop(context.Background()))
	require.NoError(t, syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
}
