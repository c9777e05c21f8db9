package realnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
)

// KubeletHostPaths are the paths every kubelet (and KubeEdge's edged) writes whatever its root
// directory: the device-plugin registration socket (a fixed path in the kubelet) and the
// self-signed serving certificate's directory (--cert-dir's default). Start owns them for the
// nodes it runs.
var KubeletHostPaths = []string{"/var/lib/kubelet/device-plugins/kubelet.sock", "/var/lib/kubelet/pki"}

// LockPath is the lock every real-node cluster of this machine holds from Start to Stop: the
// nodes of two clusters would share one iptables (two kube-proxies rewrite each other's KUBE-*
// chains), the kubelets' fixed paths and the LC's hostPaths.
var LockPath = "/run/lock/sedna-e2e-real-nodes.lock"

// lockHost waits for LockPath and returns the open file holding it (closing it releases it).
func lockHost() (*os.File, error) {
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the real-node lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", LockPath, err)
		}
		fmt.Fprintf(os.Stderr, "realnode: waiting for %s (another real-node cluster runs on this machine)\n", LockPath)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", LockPath, err)
		}
	}
	return f, nil
}

// HostPaths are the paths outside a run's directory that the run creates on this machine and so
// must remove: those it owns (which must not exist before, or they would be another's), those it
// may create but others may have made (removed only when they did not exist before), and the
// missing parents of either.
type HostPaths struct {
	// created lists what did not exist at Claim and Release removes, deepest first.
	created []string
	// watched is every path Claim looked at, for SnapshotHost.
	watched []string
}

// ClaimHostPaths records which of owned and shared exist and refuses, naming it, an owned path
// that exists: it is another program's (or what an interrupted run left, which its owner removes).
func ClaimHostPaths(owned, shared []string) (*HostPaths, error) {
	h := &HostPaths{}
	seen := map[string]bool{}
	var exists []string
	add := func(p string, mustBeNew bool) error {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) || p == "/" {
			return fmt.Errorf("host path %q: want an absolute path below /", p)
		}
		if _, err := os.Lstat(p); err == nil && mustBeNew && !slices.Contains(exists, p) {
			exists = append(exists, p)
		}
		for q := p; q != "/"; q = filepath.Dir(q) {
			if seen[q] {
				break
			}
			seen[q] = true
			h.watched = append(h.watched, q)
			_, err := os.Lstat(q)
			switch {
			case err == nil:
				return nil // it and what is above it stay
			case !os.IsNotExist(err):
				return fmt.Errorf("host path %s: %w", q, err)
			}
			h.created = append(h.created, q)
		}
		return nil
	}
	for _, p := range owned {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range shared {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	if len(exists) > 0 {
		return nil, fmt.Errorf("%v exist on this machine, and a run here would create and remove them: another program's, or left by an interrupted run — move them away first", exists)
	}
	sort.Slice(h.created, func(i, j int) bool { return len(h.created[i]) > len(h.created[j]) })
	sort.Strings(h.watched)
	return h, nil
}

// Release removes every path that did not exist at Claim (safe on nil).
func (h *HostPaths) Release() error {
	if h == nil {
		return nil
	}
	var errs []error
	for _, p := range h.created {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Watched is every path the claim covers, parents included: pass it to SnapshotHost.
func (h *HostPaths) Watched() []string {
	if h == nil {
		return nil
	}
	return slices.Clone(h.watched)
}
