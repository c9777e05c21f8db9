package processnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sedna-go/sedna/test/netns"
)

// TestPodRunsInTheNodesNetworkNamespace: with NetNS set, a container (isolated or not) sees the
// namespace's interfaces, among them the node's address, and not the machine's.
func TestPodRunsInTheNodesNetworkNamespace(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	n, err := netns.Setup(context.Background(), netns.Options{Subnet: 250, Nodes: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	link := n.Links[0]
	for _, isolate := range []bool{false, true} {
		opts := runnerOptions(t)
		opts.PodIP, opts.HostIP, opts.NetNS, opts.IsolateHosts = link.NodeIP, link.NodeIP, link.Path(), isolate
		require.NoError(t, os.MkdirAll(filepath.Join(opts.NodeRoot, "host", "data"), 0o755))
		pod, err := StartPod(shPod(corev1.RestartPolicyNever, `echo "ip=$NODE"; cat /proc/net/dev`), opts)
		require.NoError(t, err)
		<-pod.Done()
		status := pod.Status()
		require.Equal(t, corev1.PodSucceeded, status.Phase, status.Message)
		log, err := os.ReadFile(filepath.Join(opts.LogDir, "ns_p_main.log"))
		require.NoError(t, err)
		require.Contains(t, string(log), "ip="+link.NodeIP)
		require.Contains(t, string(log), link.NSIf+":", "the namespace's end of the veth pair (isolated: %v)", isolate)
		require.NotContains(t, string(log), link.HostIf+":", "the host's end is not in the namespace")
		require.False(t, strings.Contains(string(log), n.CloudIf+":"), "the host's links are not in the namespace")
	}
}
