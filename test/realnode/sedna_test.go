//go:build e2ereal

package realnode

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2/ktesting"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// The images the tier runs, as `make e2e-real` builds them (hack/images) for this machine.
var tierImages = []string{"sedna-pause", "sedna-gm", "sedna-lc", "sedna-kb", "mnist-edge", "mnist-cloud"}

// jiNamespace is where the demo runs (its manifests name no namespace).
const jiNamespace = "default"

// demoDataDir is where the demo's Models point (examples/joint_inference/mnist), on the nodes.
const demoDataDir = "/data/mnist"

func repoPath(elem ...string) string {
	return filepath.Join(append([]string{localcluster.RepoRoot()}, elem...)...)
}

// Sedna installed by scripts/installation/install.sh, unmodified, on real nodes: GM (two replicas,
// one leading) and the knowledge base as Deployments on the cloud node, the LC as the DaemonSet on
// the edge node, the MNIST joint inference demo's workers as pods — all real containers from `make
// images`. The demo's accuracy and hard-example share are asserted as on local Sedna; then
// SEDNA_ACTION=delete leaves the cluster with exactly the objects it had before the install, and
// stopping the nodes leaves the host as it was.
func TestInstallAndJointInferenceOnRealNodes(t *testing.T) {
	requireHost(t)
	logger, ctx := ktesting.NewTestContext(t)
	var images []string
	for _, name := range tierImages {
		path := repoPath("_output", "images-e2e-real", "linux-"+runtime.GOARCH, name+".tar")
		_, err := os.Stat(path)
		require.NoError(t, err, "run `make e2e-real` (it builds the images first)")
		images = append(images, path)
	}
	for _, bin := range []string{"mnist-train", "mnist-eval", "kubectl"} {
		_, err := os.Stat(repoPath("_output", "bin", bin))
		require.NoError(t, err, "run `make e2e-real` (it builds %s first)", bin)
	}
	start := time.Now()

	models := trainedModels(t)
	opts := Options{
		Dir: repoPath("_output", "e2e-real"),
		Nodes: []NodeSpec{
			{Name: "cloud-node", Bridge: "sedna-cloud0", Subnet: "10.251.1.0/24"},
			{Name: "edge-node-1", Bridge: "sedna-edge0", Subnet: "10.251.2.0/24", Labels: map[string]string{"node-role.kubernetes.io/edge": ""}},
		},
		ClusterCIDR: "10.251.0.0/16",
		ServiceCIDR: "10.250.0.0/24",
		Images:      images,
		// The LC DaemonSet's hostPaths on "each node" (this machine): its store is the run's
		// alone, /data may be there already; the demo's models are the run's.
		OwnedHostPaths:  []string{"/var/lib/sedna", demoDataDir},
		SharedHostPaths: []string{"/data"},
	}
	cluster, err := Start(ctx, opts)
	stop := stopOnce(cluster)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the real nodes: %v", err)
		}
	})
	require.NoError(t, err)
	logger.Info("Nodes are up", "after", time.Since(start))

	// The host paths the demo's Models point at, made as an administrator would: readable by the
	// workers' user 65532. Stop removes them (Options.OwnedHostPaths).
	require.NoError(t, os.MkdirAll(filepath.Join(demoDataDir, "models"), 0o755))
	for _, f := range []string{"edge.model", "cloud.model"} {
		data, err := os.ReadFile(filepath.Join(models, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(demoDataDir, "models", f), data, 0o644))
	}
	// Runs before the nodes stop (cleanups run last-in first-out): the pods' logs go with them.
	t.Cleanup(func() {
		if t.Failed() {
			for _, ns := range []string{"sedna", jiNamespace} {
				t.Logf("--- pods of %s ---\n%s", ns, podReport(t, cluster, ns, 30))
				savePodLogs(t, cluster, ns, filepath.Join(opts.Dir, "pod-logs"))
			}
		}
	})

	// The knowledge base's volume: no StorageClass here, so a PersistentVolume an administrator
	// makes (docs/install.md), a host directory the kb user owns.
	kbDir := filepath.Join(opts.Dir, "kb-data")
	require.NoError(t, os.MkdirAll(kbDir, 0o700))
	require.NoError(t, os.Chown(kbDir, 65532, 65532))
	_, err = cluster.Client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "sedna-kb-data"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "sedna", Name: "sedna-kb-data"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: kbDir}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	before := snapshotObjects(t, cluster)
	out, code := installScript(t, cluster, "SEDNA_ACTION=create", "SEDNA_WAIT_TIMEOUT=240s")
	if code != 0 {
		t.Fatalf("install.sh create: exit %d\n%s\n%s", code, out, podReport(t, cluster, "sedna", 15))
	}
	logger.Info("install.sh create done", "after", time.Since(start))
	pods := podsByNode(t, cluster, "sedna")
	require.Equal(t, map[string]int{"cloud-node": 3, "edge-node-1": 1}, countByNode(pods), "pods per node: %v", pods)

	// The demo, as its README says.
	jiManifest := repoPath("examples", "joint_inference", "mnist", "mnist-joint-inference.yaml")
	kubectl(t, cluster, "apply", "-n", jiNamespace, "-f", jiManifest)
	sedna, err := sednaclientset.NewForConfig(cluster.Config)
	require.NoError(t, err)
	jis := sedna.SednaV1alpha1().JointInferenceServices(jiNamespace)
	eventually(t, 4*time.Minute, "the joint inference service to be Ready", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return apimeta.IsStatusConditionTrue(ji.Status.Conditions, sednav1.ConditionReady), fmt.Sprintf("conditions=%v\n%s", ji.Status.Conditions, podReport(t, cluster, jiNamespace, 15))
	})
	edgeIP := ""
	eventually(t, 2*time.Minute, "the edge worker's API", func() (bool, string) {
		edgeIP = podIPOn(t, cluster, jiNamespace, "edge-node-1")
		if edgeIP == "" {
			return false, "no running pod on edge-node-1"
		}
		resp, err := http.Get("http://" + edgeIP + ":8000/healthz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	// The edge falls back to its own answer while the cloud Service is not routed yet (kube-proxy
	// writes its rules after the endpoints are ready): measure once it is, as a user would.
	eventually(t, 2*time.Minute, "the cloud worker through its Service", func() (bool, string) {
		svc, err := cluster.Client.CoreV1().Services(jiNamespace).Get(ctx, "mnist-ji-cloud", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(svc.Spec.ClusterIP, "5000"), 2*time.Second)
		if err != nil {
			return false, err.Error()
		}
		_ = conn.Close() // a probe
		return true, ""
	})
	offline := mnistEval(t, "--edge-model", filepath.Join(models, "edge.model"), "--cloud-model", filepath.Join(models, "cloud.model"), "--thresholds", "0.7")
	online := mnistEval(t, "--edge-url", "http://"+edgeIP+":8000")
	require.Equal(t, 10000, online.Images)
	t.Logf("real nodes: edge only %.2f%%, cloud only %.2f%%, joint %.2f%% with %.1f%% sent to the cloud, %d fallbacks",
		100*offline.EdgeAccuracy, 100*offline.CloudAccuracy, 100*online.Accuracy, 100*online.CloudShare, online.Fallbacks)
	require.GreaterOrEqual(t, online.Accuracy, offline.EdgeAccuracy+0.03, "joint accuracy is not 3 points above the edge's")
	require.LessOrEqual(t, online.CloudShare, 0.40)
	require.Positive(t, online.Sources["cloud"], "nothing reached the cloud worker")
	require.Zero(t, online.Fallbacks, "the cloud was up, yet the edge fell back")
	// The edge's reports reached status through the LC (edge node) and GM (cloud node).
	eventually(t, 2*time.Minute, "the edge's report in status.metrics", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		n, _ := localsedna.MetricValue(ji, "inferenceNumber")
		ratio, ok := localsedna.MetricValue(ji, "uploadCloudRatio")
		return n >= 10000 && ok && ratio > 0 && ratio <= 0.40, fmt.Sprintf("metrics=%v", ji.Status.Metrics)
	})
	logger.Info("Joint inference demo passed", "after", time.Since(start))

	// GM fails over in real containers: the leader's pod is deleted, the standby takes the Lease
	// and labels its pod, the gm Service follows the label, the LC reconnects, and the edge's
	// next reports reach status.
	leader := gmLeader(t, cluster)
	require.NotEmpty(t, leader, "no GM pod is labelled %s=%s", gmRoleLabel, "leader")
	require.NoError(t, cluster.Client.CoreV1().Pods("sedna").Delete(ctx, leader, metav1.DeleteOptions{}))
	eventually(t, 2*time.Minute, "another GM to lead", func() (bool, string) {
		now := gmLeader(t, cluster)
		return now != "" && now != leader, fmt.Sprintf("leader %q\n%s", now, podReport(t, cluster, "sedna", 5))
	})
	mnistEval(t, "--edge-url", "http://"+edgeIP+":8000", "--limit", "300")
	eventually(t, 2*time.Minute, "the reports after the failover in status.metrics", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		n, _ := localsedna.MetricValue(ji, "inferenceNumber")
		return n >= 10300, fmt.Sprintf("metrics=%v", ji.Status.Metrics)
	})
	logger.Info("GM failed over", "from", leader, "to", gmLeader(t, cluster), "after", time.Since(start))

	// Uninstall: the demo first (install.sh refuses while Sedna objects exist), then Sedna.
	kubectl(t, cluster, "delete", "-n", jiNamespace, "--wait=true", "-f", jiManifest)
	eventually(t, 2*time.Minute, "the demo's pods to go", func() (bool, string) {
		p := podsByNode(t, cluster, jiNamespace)
		return len(p) == 0, fmt.Sprintf("pods: %v", p)
	})
	out, code = installScript(t, cluster, "SEDNA_ACTION=delete")
	require.Zero(t, code, "install.sh delete:\n%s", out)
	eventually(t, 2*time.Minute, "the cluster to list what it had before the install", func() (bool, string) {
		after := snapshotObjects(t, cluster)
		added, removed := diffObjects(before, after), diffObjects(after, before)
		return len(added)+len(removed) == 0, fmt.Sprintf("left: %v\ngone: %v", added, removed)
	})
	require.NoError(t, cluster.Client.CoreV1().PersistentVolumes().Delete(ctx, "sedna-kb-data", metav1.DeleteOptions{}))
	logger.Info("install.sh delete left nothing", "after", time.Since(start))

	require.NoError(t, stop())
	after, err := cluster.SnapshotHost(ctx)
	require.NoError(t, err)
	require.Empty(t, cluster.Leftovers(after), "the host changed")
	t.Logf("the real-node tier took %s", time.Since(start).Round(time.Second))
}

// stopOnce stops the cluster once, from the test's end or from SIGINT/SIGTERM (an interrupted run
// still removes its bridges, mounts, cgroups and iptables rules).
func stopOnce(c *Cluster) func() error {
	done := make(chan struct{})
	var err error
	stopped := false
	stopFn := func() error {
		if stopped {
			return err
		}
		stopped = true
		defer close(done)
		if c == nil {
			return nil
		}
		err = c.Stop(context.Background())
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "realnode: %v: removing the real nodes\n", sig)
			if err := stopFn(); err != nil {
				fmt.Fprintf(os.Stderr, "realnode: %v\n", err)
			}
			os.Exit(1)
		case <-done:
			signal.Stop(sigs)
		}
	}()
	return stopFn
}

// trainedModels trains the demo's models once into _output/mnist/models (as local Sedna does).
func trainedModels(t *testing.T) string {
	dir := repoPath("_output", "mnist", "models")
	if _, err := os.Stat(filepath.Join(dir, "cloud.model")); err == nil {
		return dir
	}
	cmd := exec.Command(repoPath("_output", "bin", "mnist-train"), "--out-dir", dir)
	cmd.Dir = localcluster.RepoRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "mnist-train:\n%s", out)
	return dir
}

func installScript(t *testing.T, c *Cluster, settings ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, repoPath("scripts", "installation", "install.sh"))
	bin := repoPath("_output", "bin")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "KUBECTL="+filepath.Join(bin, "kubectl"))
	cmd.Env = append(cmd.Env, settings...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("install.sh %v:\n%s", settings, out.String())
	if err != nil {
		if exitErr, ok := err.(*exec.ExitError); ok {
			return out.String(), exitErr.ExitCode()
		}
		t.Fatalf("install.sh: %v", err)
	}
	return out.String(), 0
}

func kubectl(t *testing.T, c *Cluster, args ...string) string {
	t.Helper()
	cmd := exec.Command(repoPath("_output", "bin", "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kubectl %v:\n%s", args, out)
	return string(out)
}

// podsByNode maps "namespace/pod" to its node for the running, not deleted pods of ns.
func podsByNode(t *testing.T, c *Cluster, ns string) map[string]string {
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Name] = p.Spec.NodeName
	}
	return out
}

func countByNode(pods map[string]string) map[string]int {
	out := map[string]int{}
	for _, n := range pods {
		out[n]++
	}
	return out
}

func podIPOn(t *testing.T, c *Cluster, ns, node string) string {
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		if p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p.Status.PodIP
		}
	}
	return ""
}

// podReport describes the pods of ns and the tail of their logs, for failure messages.
func podReport(t *testing.T, c *Cluster, ns string, lines int64) string {
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s/%s on %s: %s ip=%s\n", ns, p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  %s ready=%v restarts=%d state=%+v last=%+v\n", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
		}
		logs, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptrTo(lines)}).DoRaw(context.Background())
		if err != nil {
			fmt.Fprintf(&b, "  (logs: %v)\n", err)
			continue
		}
		fmt.Fprintf(&b, "  logs:\n%s\n", logs)
	}
	return b.String()
}

// savePodLogs writes the whole log of every container of ns to dir/<ns>_<pod>_<container>.log.
func savePodLogs(t *testing.T, c *Cluster, ns, dir string) {
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	for _, p := range pods.Items {
		for _, ctr := range p.Spec.Containers {
			logs, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: ctr.Name}).DoRaw(context.Background())
			if err != nil {
				continue
			}
			path := filepath.Join(dir, ns+"_"+p.Name+"_"+ctr.Name+".log")
			if os.WriteFile(path, logs, 0o644) == nil {
				t.Logf("log of %s/%s %s: %s", ns, p.Name, ctr.Name, path)
			}
		}
	}
}

// gmRoleLabel is the label GM puts on its own pod (cmd/sedna-gm/app.RoleLabel).
const gmRoleLabel = "sedna.io/gm-role"

// gmLeader is the one running, Ready GM pod labelled leader, or "" (none, or more than one).
func gmLeader(t *testing.T, c *Cluster) string {
	pods, err := c.Client.CoreV1().Pods("sedna").List(context.Background(), metav1.ListOptions{LabelSelector: gmRoleLabel + "=leader"})
	require.NoError(t, err)
	var leaders []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				leaders = append(leaders, p.Name)
			}
		}
	}
	if len(leaders) != 1 {
		return ""
	}
	return leaders[0]
}

func ptrTo[T any](v T) *T { return &v }

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(context.Context) (bool, error) {
		ok, msg := cond()
		last = msg
		return ok, nil
	})
	require.NoError(t, err, "waiting for %s: %s", what, last)
}

// evalResult is the RESULT line of mnist-eval.
type evalResult = localsedna.MNISTEvalResult

func mnistEval(t *testing.T, args ...string) evalResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	result, out, err := localsedna.RunMNISTEval(ctx, repoPath("_output", "bin", "mnist-eval"), args...)
	require.NoError(t, err, out)
	t.Logf("mnist-eval %s:\n%s", strings.Join(args, " "), out)
	return result
}

// snapshotObjects lists every object of every listable resource, events and leases aside (the
// cluster's record of what happened and the components' heartbeats, not installed objects).
func snapshotObjects(t *testing.T, c *Cluster) map[string]bool {
	t.Helper()
	disc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	lists, err := disc.ServerPreferredResources()
	require.NoError(t, err)
	out := map[string]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(t, err)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(context.Background(), metav1.ListOptions{})
			require.NoError(t, err)
			for _, it := range items.Items {
				if r.Name == "leases" && it.GetNamespace() != "sedna" {
					continue
				}
				out[fmt.Sprintf("%s/%s %s/%s", gv.Group, r.Name, it.GetNamespace(), it.GetName())] = true
			}
		}
	}
	return out
}

func diffObjects(a, b map[string]bool) []string {
	var out []string
	for k := range b {
		if !a[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
