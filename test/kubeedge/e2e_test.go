//go:build e2ekubeedge

package kubeedge_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/kubeedge"
	"github.com/sedna-go/sedna/test/localcluster"
)

func TestSednaOnKubeEdge(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	logger := klog.FromContext(ctx)
	root := localcluster.RepoRoot()
	bin := filepath.Join(root, "_output", "bin")

	iptablesBefore, err := kubeedge.IptablesSnapshot(ctx)
	require.NoError(t, err)
	bins, err := kubeedge.InstallBinaries(ctx)
	require.NoError(t, err)

	dir := filepath.Join(root, "_output", "e2e-kubeedge")
	require.NoError(t, os.RemoveAll(dir))
	cluster, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"), BinDir: bin})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cluster.Stop()) })
	kube, err := kubernetes.NewForConfig(cluster.Config)
	require.NoError(t, err)

	cc, err := kubeedge.StartCloudCore(ctx, kubeedge.CloudCoreOptions{Dir: filepath.Join(dir, "cloudcore"), Binaries: bins,
		Kubeconfig: cluster.Kubeconfig, Kubectl: filepath.Join(bin, "kubectl"), Kube: kube})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cc.Stop()) })

	start := time.Now()
	ec, err := kubeedge.StartEdgeCore(ctx, kubeedge.EdgeCoreOptions{Dir: filepath.Join(dir, "edge-node-1"), Binaries: bins,
		NodeName: "edge-node-1", NodeIP: os.Getenv("KUBEEDGE_NODE_IP"), RuntimeEndpoint: os.Getenv("KUBEEDGE_CRI"),
		PodSandboxImage: "sedna-test/pause:dev", CloudCore: cc, Kube: kube})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ec.Stop()) })
	logger.Info("edge node Ready", "after", time.Since(start))
	node, err := kube.CoreV1().Nodes().Get(ctx, "edge-node-1", metav1.GetOptions{})
	require.NoError(t, err)
	t.Logf("node labels %v addresses %v version %s runtime %s", node.Labels, node.Status.Addresses, node.Status.NodeInfo.KubeletVersion, node.Status.NodeInfo.ContainerRuntimeVersion)

	t.Cleanup(func() {
		after, err := kubeedge.IptablesSnapshot(context.Background())
		require.NoError(t, err)
		require.Equal(t, iptablesBefore, after, "iptables rules changed")
	})
}
