package processnode

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	eventually = 60 * time.Second
	tick       = 250 * time.Millisecond
)

// TestRunNode runs a process node against a real control plane: pods bound to it start as local
// processes with the node's IP, exits become Failed with their exit code, a normal (graceful)
// delete stops the processes and removes the pod, and a Deployment's replicas run.
func TestRunNode(t *testing.T) {
	binDir := filepath.Join(localcluster.RepoRoot(), "_output", "bin")
	if _, err := os.Stat(filepath.Join(binDir, "kube-scheduler")); err != nil {
		t.Fatalf("control-plane binaries missing in %s (run hack/install-test-binaries.sh): %v", binDir, err)
	}
	started := time.Now()
	_, ctx := ktesting.NewTestContext(t)
	cluster, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cluster.Stop()) })
	client, err := kubernetes.NewForConfig(cluster.Config)
	require.NoError(t, err)

	root := t.TempDir()
	// Not the default 10250: local Sedna's test may run a node on 127.0.1.1 at the same time.
	probe, err := net.Listen("tcp", "127.0.1.1:0")
	require.NoError(t, err)
	kubeletPort := probe.Addr().(*net.TCPAddr).Port
	require.NoError(t, probe.Close())
	nodeCtx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan error, 1)
	go func() {
		nodeDone <- RunNode(nodeCtx, client, NodeOptions{
			Name: "edge-1", IP: "127.0.1.1", Root: root, KubeletPort: kubeletPort,
			Labels: map[string]string{"node-role.kubernetes.io/edge": ""},
			Images: ImageTable{"sedna/shell": "/bin/sh"},
			// Every container runs behind the /etc/hosts wrapper, so the process-group and
			// exit-code checks below hold for it too.
			IsolateHosts: true,
			ClusterHosts: func() string { return "127.0.100.10 myservice.myns myservice.myns.svc.cluster.local\n" },
		})
	}()
	nodeStopped := false
	// Registered before the cluster is stopped (cleanups run last-in first-out), so the node's
	// processes end while the apiserver still answers.
	t.Cleanup(func() {
		if !nodeStopped {
			stopNode()
			require.NoError(t, <-nodeDone)
		}
	})

	require.Eventually(t, func() bool {
		node, err := client.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
		if err != nil || !localcluster.NodeReady(node) || len(node.Spec.Taints) != 0 {
			return false
		}
		lease, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "edge-1", metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil
	}, eventually, tick, "node edge-1 should be registered, Ready, untainted and hold a lease")
	node, err := client.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.1.1"})
	require.Equal(t, "110", node.Status.Allocatable.Pods().String())
	require.Equal(t, "edge-1", node.Labels[corev1.LabelHostname])
	require.Contains(t, node.Labels, "node-role.kubernetes.io/edge")

	const ns = "processnode-test"
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, eventually, tick, "the serviceaccount controller should create the default service account")

	volumesPod := startVolumesPod(ctx, t, client, ns)

	// Kubernetes expands $(POD_IP) and turns $$ into $, so the shell sees "$$": its own PID, which
	// is also the process group the runner signals.
	hello := shellPod("hello", corev1.RestartPolicyAlways, "echo hello $(POD_IP); echo pid $$$$; sleep 300")
	hello.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	_, err = client.CoreV1().Pods(ns).Create(ctx, hello, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Pods(ns).Create(ctx, shellPod("fails", corev1.RestartPolicyNever, "exit 3"), metav1.CreateOptions{})
	require.NoError(t, err)

	var running *corev1.Pod
	require.Eventually(t, func() bool {
		running, err = client.CoreV1().Pods(ns).Get(ctx, "hello", metav1.GetOptions{})
		return err == nil && running.Status.Phase == corev1.PodRunning && podReady(running)
	}, eventually, tick, "pod hello should become Running and Ready")
	require.Equal(t, "edge-1", running.Spec.NodeName)
	require.Equal(t, "127.0.1.1", running.Status.PodIP)
	require.Equal(t, "127.0.1.1", running.Status.HostIP)
	require.Len(t, running.Status.ContainerStatuses, 1)
	require.NotNil(t, running.Status.ContainerStatuses[0].State.Running)
	require.True(t, hasCondition(running, corev1.PodScheduled), "the scheduler's PodScheduled condition must survive status updates")

	logPath := filepath.Join(root, "logs", ns+"_hello_main.log")
	var pid int
	require.Eventually(t, func() bool {
		log, err := os.ReadFile(logPath)
		if err != nil {
			return false
		}
		match := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(string(log))
		if !strings.Contains(string(log), "hello 127.0.1.1\n") || match == nil {
			return false
		}
		pid, err = strconv.Atoi(match[1])
		return err == nil
	}, eventually, tick, "the log %s should greet with the pod IP and show the shell's PID", logPath)
	require.NoError(t, syscall.Kill(-pid, 0), "process group %d should be running", pid)
	// kubectl logs: the apiserver proxies to the node's kubelet API on its InternalIP.
	viaAPI, err := client.CoreV1().Pods(ns).GetLogs("hello", &corev1.PodLogOptions{Container: "main"}).DoRaw(ctx)
	require.NoError(t, err, "reading the log through the apiserver")
	require.Contains(t, string(viaAPI), "hello 127.0.1.1\n")
	tail := int64(1)
	lastLine, err := client.CoreV1().Pods(ns).GetLogs("hello", &corev1.PodLogOptions{Container: "main", TailLines: &tail}).DoRaw(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(lastLine), "\n"), "tailLines=1 returned %q", lastLine)

	require.Eventually(t, func() bool {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, "fails", metav1.GetOptions{})
		if err != nil || pod.Status.Phase != corev1.PodFailed || len(pod.Status.ContainerStatuses) != 1 {
			return false
		}
		terminated := pod.Status.ContainerStatuses[0].State.Terminated
		return terminated != nil && terminated.ExitCode == 3
	}, eventually, tick, "pod fails should be Failed with exit code 3")

	// The default grace period (30s) applies. The pod must disappear well before it ends: only the
	// node confirming that the processes stopped, as a kubelet does, removes it that early.
	deleteStarted := time.Now()
	require.NoError(t, client.CoreV1().Pods(ns).Delete(ctx, "hello", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "hello", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 20*time.Second, tick, "pod hello should be deleted once its processes stop, before its grace period ends")
	t.Logf("graceful delete took %s", time.Since(deleteStarted))
	requireProcessGroupGone(t, pid)

	labels := map[string]string{"app": "shell"}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shell"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       shellPod("", corev1.RestartPolicyAlways, "sleep 300").Spec,
			},
		},
	}
	_, err = client.AppsV1().Deployments(ns).Create(ctx, deployment, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=shell"})
		if err != nil || len(pods.Items) != 2 {
			return false
		}
		for _, pod := range pods.Items {
			if pod.Spec.NodeName != "edge-1" || pod.Status.Phase != corev1.PodRunning {
				return false
			}
		}
		return true
	}, eventually, tick, "the deployment's two pods should run on edge-1")
	require.Eventually(t, func() bool {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "shell", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2
	}, eventually, tick, "the deployment should count both replicas available")

	checkVolumesPod(ctx, t, client, root, volumesPod)

	// Stopping the node ends every pod's processes before RunNode returns.
	pgids := runningProcessGroups(t, root, ns)
	require.Len(t, pgids, 2)
	nodeStopped = true
	stopNode()
	require.NoError(t, <-nodeDone)
	for _, pgid := range pgids {
		requireProcessGroupGone(t, pgid)
	}
	t.Logf("whole test took %s", time.Since(started))
}

// startVolumesPod creates a pod that reads a ConfigMap through a subPath mount, holds a bound
// service-account token for its own audience, resolves a cluster name through its hosts file, and
// tries to write into the kube-api-access volume, which admission mounts readOnly.
func startVolumesPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) *corev1.Pod {
	t.Helper()
	_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gm-config"},
		Data:       map[string]string{"gm.yaml": "kubeConfig: in-cluster\n"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := shellPod("volumes", corev1.RestartPolicyAlways, `getent hosts myservice.myns
		if (echo x > "$API_ACCESS/written") 2>/dev/null; then echo "api access: written"; else echo "api access: refused"; fi
		cat "$GM_CONFIG"; sleep 300`)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "gm-config"}}}},
		{Name: "lc-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "sedna-test", ExpirationSeconds: ptr.To(int64(600))}},
		}}}},
	}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GM_CONFIG", Value: "/etc/sedna/gm.yaml"},
		{Name: "API_ACCESS", Value: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/sedna/gm.yaml", SubPath: "gm.yaml"},
		{Name: "lc-token", MountPath: "/var/run/secrets/sedna"},
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	return created
}

// checkVolumesPod verifies what startVolumesPod's pod saw, and its token, as a TokenReview
// reports it: bound to the pod and, through it, to the node.
func checkVolumesPod(ctx context.Context, t *testing.T, client kubernetes.Interface, root string, pod *corev1.Pod) {
	t.Helper()
	require.Eventually(t, func() bool {
		running, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && running.Status.Phase == corev1.PodRunning && podReady(running)
	}, eventually, tick, "pod %s should become Running and Ready", pod.Name)
	logPath := filepath.Join(root, "logs", pod.Namespace+"_"+pod.Name+"_main.log")
	require.Eventually(t, func() bool {
		log, err := os.ReadFile(logPath)
		return err == nil && strings.Contains(string(log), "kubeConfig: in-cluster\n")
	}, eventually, tick, "the log %s should show the configMap file read through its subPath", logPath)
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Regexp(t, `127\.0\.100\.10\s+myservice\.myns`, string(log), "the cluster name resolves through the pod's hosts file")
	require.Contains(t, string(log), "api access: refused\n", "the readOnly kube-api-access mount refuses writes")

	volumes := filepath.Join(root, "pods", string(pod.UID), "volumes")
	token, err := os.ReadFile(filepath.Join(volumes, "lc-token", "token"))
	require.NoError(t, err)
	review, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: string(token), Audiences: []string{"sedna-test"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.True(t, review.Status.Authenticated, "token review: %s", review.Status.Error)
	require.Equal(t, "system:serviceaccount:"+pod.Namespace+":default", review.Status.User.Username)
	extra := review.Status.User.Extra
	require.Equal(t, authenticationv1.ExtraValue{pod.Name}, extra["authentication.kubernetes.io/pod-name"])
	require.Equal(t, authenticationv1.ExtraValue{string(pod.UID)}, extra["authentication.kubernetes.io/pod-uid"])
	require.Equal(t, authenticationv1.ExtraValue{"edge-1"}, extra["authentication.kubernetes.io/node-name"])

	// The ServiceAccount admission plugin adds a kube-api-access projected volume to every pod;
	// the node writes it as a kubelet would.
	var apiAccess string
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			apiAccess = filepath.Join(volumes, v.Name)
		}
	}
	require.NotEmpty(t, apiAccess, "the pod should have a kube-api-access volume")
	namespace, err := os.ReadFile(filepath.Join(apiAccess, "namespace"))
	require.NoError(t, err)
	require.Equal(t, pod.Namespace, string(namespace))
	require.FileExists(t, filepath.Join(apiAccess, "ca.crt"))
	require.FileExists(t, filepath.Join(apiAccess, "token"))
	require.NoFileExists(t, filepath.Join(apiAccess, "written"))
}

// runningProcessGroups reads the PIDs the deployment's shells print (see the pod command).
func runningProcessGroups(t *testing.T, root, ns string) []int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(root, "logs", ns+"_shell-*_main.log"))
	require.NoError(t, err)
	var pgids []int
	for _, path := range logs {
		var pid int
		require.Eventually(t, func() bool {
			log, err := os.ReadFile(path)
			if err != nil {
				return false
			}
			match := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(string(log))
			if match == nil {
				return false
			}
			pid, err = strconv.Atoi(match[1])
			return err == nil
		}, eventually, tick, "%s should show the shell's PID", path)
		require.NoError(t, syscall.Kill(-pid, 0), "process group %d (%s) should be running", pid, path)
		pgids = append(pgids, pid)
	}
	return pgids
}

// requireProcessGroupGone waits briefly for the group to vanish: the runner waits for the shell it
// started, but the shell's children (sleep), signalled at the same time, are reaped by init a
// moment later.
func requireProcessGroupGone(t *testing.T, pgid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
	}, 10*time.Second, 50*time.Millisecond, "process group %d should be gone", pgid)
}

func shellPod(name string, restart corev1.RestartPolicy, script string) *corev1.Pod {
	if !strings.Contains(script, "pid $$$$") {
		script = "echo pid $$$$; " + script
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeSelector:  map[string]string{corev1.LabelHostname: "edge-1"},
			RestartPolicy: restart,
			Containers: []corev1.Container{{
				Name: "main", Image: "sedna/shell:latest", Command: []string{"sh", "-c"}, Args: []string{script},
			}},
		},
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasCondition(pod *corev1.Pod, conditionType corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == conditionType {
			return true
		}
	}
	return false
}
