//go:build e2ekubeedge

package kubeedge_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/kubeedge"
	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	edgeNode = "edge-node-1"
	// hostPaths of build/lc that the LC creates on its node, here this machine.
	lcStateDir, lcDataDir = "/var/lib/sedna", "/data"
)

// TestSednaOnKubeEdge installs Sedna with scripts/installation/install.sh on a local control
// plane whose edge node is a real KubeEdge edgecore (v1.23.1, joined through cloudcore) running
// containers on containerd, and checks that the LC DaemonSet's pod runs there from the sedna-lc
// image, reaches GM at SEDNA_GM_ADDRESS and is connected; then that install.sh's delete leaves
// none of Sedna's objects and the LC's containers gone, and that the machine's iptables rules are
// what they were.
func TestSednaOnKubeEdge(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	logger := klog.FromContext(ctx)
	root := localcluster.RepoRoot()
	bin := filepath.Join(root, "_output", "bin")
	kubectl := filepath.Join(bin, "kubectl")
	began := time.Now()

	iptablesBefore, err := kubeedge.IptablesSnapshot(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		after, err := kubeedge.IptablesSnapshot(context.Background())
		require.NoError(t, err)
		require.Equal(t, iptablesBefore, after, "the test changed this machine's iptables rules")
	})
	// The LC's hostPaths are this machine's: they must not hold another's data, and whatever the
	// LC writes there goes when the test ends.
	for _, d := range []string{lcStateDir, lcDataDir} {
		if _, err := os.Stat(d); err == nil {
			t.Fatalf("%s exists on this machine; the LC on the KubeEdge node would use it (build/lc hostPath): move it away first", d)
		}
		t.Cleanup(func() { require.NoError(t, os.RemoveAll(d)) })
	}

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
		Kubeconfig: cluster.Kubeconfig, Kubectl: kubectl, Kube: kube})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cc.Stop()) })

	rt := startRuntime(ctx, t, filepath.Join(dir, "containerd-"+edgeNode))
	rt.importImages(ctx, t, filepath.Join(root, "_output", "images", "linux-amd64"), "sedna-pause.tar", "sedna-lc.tar")

	joinStart := time.Now()
	ec, err := kubeedge.StartEdgeCore(ctx, kubeedge.EdgeCoreOptions{Dir: filepath.Join(dir, edgeNode), Binaries: bins,
		NodeName: edgeNode, NodeIP: rt.nodeIP, RuntimeEndpoint: rt.endpoint, PodSandboxImage: rt.sandboxImage,
		CloudCore: cc, Kube: kube})
	require.NoError(t, err)
	joined := time.Since(joinStart)
	t.Cleanup(func() { require.NoError(t, ec.Stop()) })
	node, err := kube.CoreV1().Nodes().Get(ctx, edgeNode, metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, node.Labels, kubeedge.EdgeLabel, "edgecore's node has no edge label")
	logger.Info("KubeEdge edge node joined", "node", edgeNode, "after", joined, "kubelet", node.Status.NodeInfo.KubeletVersion,
		"runtime", node.Status.NodeInfo.ContainerRuntimeVersion)

	// GM's channel, where the LC on the edge dials it: install.sh's SEDNA_GM_ADDRESS, KubeEdge
	// edge nodes having no cluster DNS or Service routing without EdgeMesh.
	gmPort, err := framework.FreePort()
	require.NoError(t, err)
	gmAddress := "127.0.0.1:" + strconv.Itoa(gmPort)
	install := func(action string, extra ...string) string {
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "installation", "install.sh"))
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "KUBECTL="+kubectl, "SEDNA_ACTION="+action)
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "install.sh %s:\n%s", action, out)
		return string(out)
	}
	installStart := time.Now()
	// No cloud node runs GM's Deployment in this tier, so install.sh is not asked to wait for it;
	// the test waits for the LC DaemonSet itself.
	out := install("create", "SEDNA_GM_ADDRESS="+gmAddress, "SEDNA_WAIT=false")
	logger.Info("install.sh create", "took", time.Since(installStart), "output", out)

	gm, err := startGM(ctx, kube, cluster.Config, bin, filepath.Join(dir, "gm"), gmAddress)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, gm.proc.Stop()) })

	lcStart := time.Now()
	var lcPod *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("sedna").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=sedna-lc"})
		if err != nil || len(pods.Items) != 1 {
			return false, nil //nolint:nilerr // not created yet
		}
		lcPod = &pods.Items[0]
		connected, err := gm.metric(ctx, "sedna_gm_channel_connected_nodes")
		if err != nil {
			return false, err
		}
		return podReady(lcPod) && connected == 1, nil
	})
	require.NoError(t, err, "the LC on %s did not connect to GM; pod: %s\nedgecore: %s\nGM: %s", edgeNode, podSummary(lcPod),
		tail(ec.LogPath()), gm.proc.LogTail())
	lcConnected := time.Since(lcStart)
	require.Equal(t, edgeNode, lcPod.Spec.NodeName)
	require.Equal(t, "kubeedge/sedna-lc:v0.7.0", lcPod.Spec.Containers[0].Image)
	require.Contains(t, lcPod.Status.ContainerStatuses[0].ContainerID, "containerd://", "the LC is not a containerd container")
	lcLog := podLog(t, ec, lcPod)
	logger.Info("LC connected to GM", "after", lcConnected, "pod", lcPod.Name, "log", lcLog)
	require.NotEmpty(t, lcLog)
	// GM knows the LC by the node of its token's pod binding, which edgecore requested through
	// cloudcore.
	gmLog, err := os.ReadFile(gm.proc.LogPath())
	require.NoError(t, err)
	require.Contains(t, string(gmLog), edgeNode)

	deleteStart := time.Now()
	out = install("delete")
	logger.Info("install.sh delete", "took", time.Since(deleteStart), "output", out)
	// Nothing of Sedna's is left in the cluster, and the LC's containers are gone from the node.
	_, err = kube.CoreV1().Namespaces().Get(ctx, "sedna", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "namespace sedna is still there (%v)", err)
	crds, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cluster.Kubeconfig, "get", "crd", "-o", "name").CombinedOutput()
	require.NoError(t, err, string(crds))
	require.NotContains(t, string(crds), "sedna.io")
	for _, kind := range []string{"clusterroles", "clusterrolebindings"} {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cluster.Kubeconfig, "get", kind, "-o", "name").CombinedOutput()
		require.NoError(t, err, string(out))
		require.NotContains(t, string(out), "sedna", "install.sh delete left %s", kind)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		return rt.containerCount(ctx, t) == 0, nil
	})
	require.NoError(t, err, "containers are left on %s after delete", edgeNode)
	logger.Info("KubeEdge tier measured", "total", time.Since(began), "edgeJoin", joined, "lcConnected", lcConnected)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podSummary(p *corev1.Pod) string {
	if p == nil {
		return "(none)"
	}
	return fmt.Sprintf("%s on %q phase %s conditions %v containers %v", p.Name, p.Spec.NodeName, p.Status.Phase,
		p.Status.Conditions, p.Status.ContainerStatuses)
}

// podLog reads the LC container's log from edged's pod log directory (kubectl logs would need
// cloudcore's stream tunnel, which is off here).
func podLog(t *testing.T, ec *kubeedge.EdgeCore, p *corev1.Pod) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(ec.PodLogDir(), p.Namespace+"_"+p.Name+"_*", p.Spec.Containers[0].Name, "*.log"))
	require.NoError(t, err)
	var b strings.Builder
	for _, m := range matches {
		data, err := os.ReadFile(m)
		require.NoError(t, err)
		b.Write(data)
	}
	return b.String()
}

func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

