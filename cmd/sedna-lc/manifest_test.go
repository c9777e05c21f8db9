package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/sedna-go/sedna/pkg/manifest"
)

// imageUID is the user every Sedna image runs as unless the manifest says otherwise
// (hack/images).
const imageUID = 65532

// hostDir is a host directory as a real node has it.
type hostDir struct {
	uid  int64
	mode os.FileMode
}

// writable reports whether a process of uid with the capabilities may create files in d: as the
// owner with the owner's write bit, or as anyone with the others' write bit, or with DAC_OVERRIDE.
func (d hostDir) writable(uid int64, caps []corev1.Capability) bool {
	if slices.Contains(caps, "DAC_OVERRIDE") || slices.Contains(caps, "CAP_DAC_OVERRIDE") {
		return true
	}
	if uid == d.uid {
		return d.mode&0o200 != 0
	}
	return d.mode&0o002 != 0
}

// TestShippedLCCanWriteItsHostPaths checks build/lc/daemonset.yaml against what a kubelet does,
// which the process-node harness (running every container as the harness's user) does not: a
// missing DirectoryOrCreate hostPath is created root:root 0755, and the LC must create its store
// there. /data may also be one the operator made writable for the workers (owned by 65532,
// docs/install.md), and the LC writes incremental learning outputs there.
func TestShippedLCCanWriteItsHostPaths(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "build", "lc", "daemonset.yaml"))
	require.NoError(t, err)
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	var ds *appsv1.DaemonSet
	for _, o := range objects {
		if d, ok := o.(*appsv1.DaemonSet); ok {
			ds = d
		}
	}
	require.NotNil(t, ds)
	spec := ds.Spec.Template.Spec
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]

	uid := int64(imageUID)
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil {
		uid = *spec.SecurityContext.RunAsUser
	}
	var caps []corev1.Capability
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		require.NotNil(t, sc.Capabilities, "the LC container must drop capabilities")
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
		caps = sc.Capabilities.Add
		require.NotNil(t, sc.AllowPrivilegeEscalation)
		require.False(t, *sc.AllowPrivilegeEscalation)
		require.NotNil(t, sc.ReadOnlyRootFilesystem)
		require.True(t, *sc.ReadOnlyRootFilesystem)
	}
	// Only what it needs: no capability beyond writing the host directories.
	for _, capability := range caps {
		require.Contains(t, []corev1.Capability{"DAC_OVERRIDE", "CAP_DAC_OVERRIDE"}, capability)
	}

	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	states := map[string]hostDir{
		"created by the kubelet (root:root 0755)":    {uid: 0, mode: 0o755},
		"made writable for the workers (65532 0755)": {uid: imageUID, mode: 0o755},
	}
	written := 0
	for _, m := range c.VolumeMounts {
		path, ok := hostPaths[m.Name]
		if !ok || m.ReadOnly {
			continue
		}
		written++
		for state, dir := range states {
			if path != "/data" && dir.uid != 0 {
				continue // only /data is shared with the workers
			}
			require.True(t, dir.writable(uid, caps), "the LC (uid %d, capabilities %v) cannot write hostPath %s %s", uid, caps, path, state)
		}
	}
	require.Equal(t, 2, written, "the LC writes /var/lib/sedna and /data")
}
