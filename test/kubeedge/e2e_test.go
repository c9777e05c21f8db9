//go:build e2ekubeedge

package kubeedge_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/kubeedge"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/realnode"
)

const (
	edgeNode, cloudNode     = "kubeedge-edge-1", "kubeedge-cloud"
	edgeBridge, cloudBridge = "snke-e0", "snke-c0"
	// hostPaths of build/lc that the LC creates on its node, here this machine.
	lcStateDir, lcDataDir = "/var/lib/sedna", "/data"
)

// TestSednaOnKubeEdge installs Sedna with scripts/installation/install.sh, unmodified, on a local
// control plane with a real cloud node (kubelet on containerd, test/realnode) and a real KubeEdge
// edge node (edgecore v1.23.1 joined through cloudcore, on its own containerd): GM and the
// knowledge base run as pods on the cloud node, and the LC DaemonSet's pod runs from the sedna-lc
// image on the edge node, reaches GM at SEDNA_GM_ADDRESS (a NodePort of the cloud node) and is
// connected. install.sh's delete then leaves none of Sedna's objects and no container on the edge,
// and when everything has stopped the machine is as it was (iptables, links, mounts, sysctls).
func TestSednaOnKubeEdge(t *testing.T) {
	if err := realnode.CheckHost(); err != nil {
		t.Fatalf("the KubeEdge tier cannot run here: %v", err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	require.NoError(t, realnode.EnsureHostPackages(ctx))
	logger := klog.FromContext(ctx)
	root := localcluster.RepoRoot()
	bin := filepath.Join(root, "_output", "bin")
	kubectl := filepath.Join(bin, "kubectl")
	// make e2e-kubeedge builds them there (make images' own output stays as it is).
	images := filepath.Join(root, "_output", "images-e2e-kubeedge", "linux-"+goruntime.GOARCH)
	began := time.Now()

	bins, err := kubeedge.InstallBinaries(ctx)
	require.NoError(t, err)

	// The cloud: a control plane whose apiserver pods reach, one real kubelet node on containerd
	// for GM and the knowledge base, kube-proxy and the cluster DNS (test/realnode). Real nodes
	// share this machine: one iptables (two kube-proxies would rewrite each other's KUBE-*
	// chains), the kubelets' fixed paths (edged's too) and the LC's hostPaths /var/lib/sedna and
	// /data (an LC refuses a store another LC holds): realnode.Start waits for realnode.LockPath,
	// refuses an existing /var/lib/sedna, and Stop removes what the run created there.
	dir := filepath.Join(root, "_output", "e2e-kubeedge")
	edgeContainerdDir := filepath.Join(dir, edgeNode, "containerd")
	cluster, err := realnode.Start(ctx, realnode.Options{
		Dir:         filepath.Join(dir, "cloud"),
		Nodes:       []realnode.NodeSpec{{Name: cloudNode, Bridge: cloudBridge, Subnet: "10.252.1.0/24"}},
		ClusterCIDR: "10.252.0.0/16",
		ServiceCIDR: "10.254.252.0/24",
		Images: []string{filepath.Join(images, "sedna-pause.tar"), filepath.Join(images, "sedna-gm.tar"),
			filepath.Join(images, "sedna-kb.tar")},
		OwnedHostPaths:  []string{lcStateDir},
		SharedHostPaths: []string{lcDataDir},
	})
	stopped := false
	t.Cleanup(func() {
		if cluster != nil && !stopped {
			_ = cluster.Stop(context.Background())
		}
	})
	require.NoError(t, err)
	kube := cluster.Client
	// What an interrupted run left of the edge node, now that this run holds the machine.
	require.NoError(t, realnode.SweepContainerd(ctx, edgeContainerdDir, edgeBridge))

	cc, err := kubeedge.StartCloudCore(ctx, kubeedge.CloudCoreOptions{Dir: filepath.Join(dir, "cloudcore"), Binaries: bins,
		Kubeconfig: cluster.Kubeconfig, Kubectl: kubectl, Kube: kube})
	require.NoError(t, err)

	// The edge: its own containerd and CNI bridge, and edgecore instead of a kubelet.
	edgeRuntime, err := realnode.StartContainerd(ctx, realnode.Config{Dir: edgeContainerdDir, Name: edgeNode,
		BridgeName: edgeBridge, Subnet: "10.252.2.0/24"})
	if err != nil {
		_ = edgeRuntime.Stop(ctx)
	}
	require.NoError(t, err)
	require.NoError(t, edgeRuntime.ImportImages(ctx, filepath.Join(images, "sedna-pause.tar"), filepath.Join(images, "sedna-lc.tar")))
	joinStart := time.Now()
	ec, err := kubeedge.StartEdgeCore(ctx, kubeedge.EdgeCoreOptions{Dir: filepath.Join(dir, edgeNode, "edgecore"), Binaries: bins,
		NodeName: edgeNode, NodeIP: edgeRuntime.Gateway().String(), RuntimeEndpoint: edgeRuntime.Endpoint(),
		PodSandboxImage: realnode.DefaultSandboxImage, CloudCore: cc, Kube: kube})
	require.NoError(t, err)
	joined := time.Since(joinStart)
	node, err := kube.CoreV1().Nodes().Get(ctx, edgeNode, metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, node.Labels, kubeedge.EdgeLabel, "edgecore's node has no edge label")
	logger.Info("KubeEdge edge node joined", "node", edgeNode, "after", joined, "kubelet", node.Status.NodeInfo.KubeletVersion,
		"runtime", node.Status.NodeInfo.ContainerRuntimeVersion)
	// Stopped in this order whatever happens: the edge, then cloudcore, then the cloud; then the
	// machine must be as it was.
	t.Cleanup(func() {
		stopped = true
		errs := []error{ec.Stop(), edgeRuntime.Stop(context.Background()), cc.Stop(), cluster.Stop(context.Background())}
		require.NoError(t, errors.Join(errs...))
		after, err := cluster.SnapshotHost(context.Background())
		require.NoError(t, err)
		require.Empty(t, cluster.Before.Diff(after), "the test changed this machine")
	})

	// The knowledge base's claim binds to a volume of the cloud node.
	kbDir := filepath.Join(dir, "cloud", cloudNode, "kb-data")
	require.NoError(t, os.MkdirAll(kbDir, 0o777))
	require.NoError(t, os.Chmod(kbDir, 0o777))
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "sedna-kb-data-e2e"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "sedna", Name: "sedna-kb-data"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: kbDir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{cloudNode}}},
			}}}},
		},
	}
	_, err = kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	require.NoError(t, err)

	// GM's channel as the edge reaches it: a NodePort on the cloud node (KubeEdge edge nodes have
	// no cluster DNS or Service routing without EdgeMesh), given to install.sh as SEDNA_GM_ADDRESS.
	nodePort := int32(30000 + rand.IntN(2767))
	gmAddress := net.JoinHostPort(cluster.Node(cloudNode).Containerd.Gateway().String(), strconv.Itoa(int(nodePort)))
	install := func(action string, extra ...string) string {
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "installation", "install.sh"))
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "KUBECTL="+kubectl, "SEDNA_ACTION="+action)
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "install.sh %s:\n%s", action, out)
		return string(out)
	}
	clusterObjects := func() map[string]bool {
		names := map[string]bool{}
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cluster.Kubeconfig, "get",
			"namespaces,crd,clusterroles,clusterrolebindings,persistentvolumes,validatingwebhookconfigurations,mutatingwebhookconfigurations",
			"-o", "name").CombinedOutput()
		require.NoError(t, err, string(out))
		for _, n := range strings.Fields(string(out)) {
			names[n] = true
		}
		return names
	}
	beforeInstall := clusterObjects()
	installStart := time.Now()
	out := install("create", "SEDNA_GM_ADDRESS="+gmAddress)
	installed := time.Since(installStart)
	logger.Info("install.sh create", "took", installed, "output", out)
	edgeService := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "sedna-gm-edge", Namespace: "sedna"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app.kubernetes.io/name": "sedna-gm", "sedna.io/gm-role": "leader"},
			Ports:    []corev1.ServicePort{{Name: "channel", Port: 9000, TargetPort: intstr.FromString("channel"), NodePort: nodePort}},
		},
	}
	_, err = kube.CoreV1().Services("sedna").Create(ctx, edgeService, metav1.CreateOptions{})
	require.NoError(t, err)

	lcStart := time.Now()
	var lcPod *corev1.Pod
	connected := 0.0
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("sedna").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=sedna-lc"})
		if err != nil || len(pods.Items) != 1 {
			return false, nil //nolint:nilerr // not created yet
		}
		lcPod = &pods.Items[0]
		if connected, err = gmConnectedNodes(ctx, kube); err != nil {
			return false, err
		}
		return podReady(lcPod) && connected == 1 && strings.Contains(podLog(t, ec, lcPod), "Connected to GM"), nil
	})
	require.NoError(t, err, "the LC on %s did not connect to GM (GM's connected_nodes %v); pod: %s\nedgecore: %s", edgeNode, connected,
		podSummary(lcPod), tail(ec.LogPath()))
	lcConnected := time.Since(lcStart)
	require.Equal(t, edgeNode, lcPod.Spec.NodeName)
	require.Equal(t, "kubeedge/sedna-lc:v0.7.0", lcPod.Spec.Containers[0].Image)
	require.Contains(t, lcPod.Status.ContainerStatuses[0].ContainerID, "containerd://", "the LC is not a containerd container")
	lcLog := podLog(t, ec, lcPod)
	logger.Info("LC connected to GM", "after", lcConnected, "pod", lcPod.Name, "log", lcLog)
	require.Contains(t, lcLog, "Connected to GM")
	require.Contains(t, lcLog, `gm="`+gmAddress+`"`)

	// The extra Service is the operator's, not install.sh's: it goes first.
	require.NoError(t, kube.CoreV1().Services("sedna").Delete(ctx, edgeService.Name, metav1.DeleteOptions{}))
	deleteStart := time.Now()
	out = install("delete")
	logger.Info("install.sh delete", "took", time.Since(deleteStart), "output", out)
	// Nothing of Sedna's is left in the cluster: the cluster-scoped objects and namespaces are
	// those of before the install, and the LC's containers are gone from the edge node.
	_, err = kube.CoreV1().Namespaces().Get(ctx, "sedna", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "namespace sedna is still there (%v)", err)
	afterDelete := clusterObjects()
	for n := range afterDelete {
		require.True(t, beforeInstall[n], "install.sh delete left %s", n)
	}
	for n := range beforeInstall {
		require.True(t, afterDelete[n], "install.sh delete removed %s, which it did not create", n)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		return containerCount(ctx, t, edgeRuntime.Socket()) == 0, nil
	})
	require.NoError(t, err, "containers are left on %s after delete", edgeNode)
	require.NoError(t, kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}))
	logger.Info("KubeEdge tier measured", "total", time.Since(began), "edgeJoin", joined, "install", installed, "lcConnected", lcConnected)
}

// gmConnectedNodes sums sedna_gm_channel_connected_nodes over GM's pods (the leader serves LCs).
func gmConnectedNodes(ctx context.Context, kube kubernetes.Interface) (float64, error) {
	pods, err := kube.CoreV1().Pods("sedna").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=sedna-gm"})
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, p := range pods.Items {
		if p.Status.PodIP == "" {
			continue
		}
		v, err := scrape(ctx, "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/metrics", "sedna_gm_channel_connected_nodes")
		if err != nil {
			continue // not serving yet
		}
		sum += v
	}
	return sum, nil
}

func containerCount(ctx context.Context, t *testing.T, socket string) int {
	out, err := exec.CommandContext(ctx, "ctr", "--address", socket, "-n", "k8s.io", "containers", "ls", "-q").CombinedOutput()
	require.NoError(t, err, string(out))
	return len(strings.Fields(string(out)))
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
