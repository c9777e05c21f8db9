package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2/ktesting"
)

const (
	eventually = 60 * time.Second
	tick       = 250 * time.Millisecond
)

func TestFirstServiceIP(t *testing.T) {
	for name, tc := range map[string]struct {
		cidr, want string
		wantErr    bool
	}{
		"loopback range": {cidr: "127.100.7.0/24", want: "127.100.7.1"},
		"ipv6":           {cidr: "fd00:10::/108", want: "fd00:10::1"},
		"single address": {cidr: "10.0.0.0/32", wantErr: true},
		"not a cidr":     {cidr: "10.0.0.0", wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			ip, err := firstServiceIP(tc.cidr)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, ip.String())
		})
	}
}

func TestStartFailsWithoutBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{Dir: t.TempDir(), BinDir: t.TempDir()})
	require.ErrorContains(t, err, "control-plane binary etcd missing")
}

// TestStartReportsFailingProcessLog starts a "kube-apiserver" that exits at once, and checks that
// Start stops the etcd it already started and reports the failing process's log.
func TestStartReportsFailingProcessLog(t *testing.T) {
	binDir := requireBinaries(t)
	fakeBin := t.TempDir()
	for _, name := range []string{"etcd", "kube-controller-manager", "kube-scheduler"} {
		require.NoError(t, os.Symlink(filepath.Join(binDir, name), filepath.Join(fakeBin, name)))
	}
	script := "#!/bin/sh\necho 'fatal: this apiserver refuses to start' >&2\nexit 3\n"
	require.NoError(t, os.WriteFile(filepath.Join(fakeBin, "kube-apiserver"), []byte(script), 0o755))

	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	_, err := Start(ctx, Options{Dir: dir, BinDir: fakeBin})
	require.ErrorContains(t, err, "kube-apiserver exited during start-up")
	require.ErrorContains(t, err, "fatal: this apiserver refuses to start")
	// etcd answered its health check, so it was running; Start must have stopped it.
	log, readErr := os.ReadFile(filepath.Join(dir, "logs", "etcd.log"))
	require.NoError(t, readErr)
	require.Contains(t, string(log), "received signal; shutting down")
}

func requireBinaries(t *testing.T) string {
	t.Helper()
	binDir := filepath.Join(RepoRoot(), "_output", "bin")
	if _, err := os.Stat(filepath.Join(binDir, "kube-scheduler")); err != nil {
		t.Fatalf("control-plane binaries missing in %s (run hack/install-test-binaries.sh): %v", binDir, err)
	}
	return binDir
}

// TestCluster runs the controllers a real cluster relies on against real processes: service
// accounts and tokens, Deployment → ReplicaSet → Pods, scheduling onto a registered node, garbage
// collection and namespace deletion.
func TestCluster(t *testing.T) {
	requireBinaries(t)
	_, ctx := ktesting.NewTestContext(t)
	started := time.Now()
	cluster, err := Start(ctx, Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Logf("control plane healthy after %s", time.Since(started))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			require.NoError(t, cluster.Stop())
		}
	})

	// The kubeconfig on disk is what hack/local-up.sh users and kubectl get; use it, not Config.
	fileConfig, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(fileConfig)
	require.NoError(t, err)

	require.NoError(t, cluster.AddNode(ctx, "edge-1", map[string]string{"node-role.kubernetes.io/edge": ""}))
	// The TaintNodesByCondition admission plugin taints every new node not-ready; the node-lifecycle
	// controller must lift it because the node reports Ready.
	require.Eventually(t, func() bool {
		node, err := client.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
		return err == nil && len(node.Spec.Taints) == 0 && NodeReady(node)
	}, eventually, tick, "node edge-1 should be Ready and untainted")

	const ns = "localcluster-test"
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The serviceaccount controller creates "default" in each namespace; pods cannot be admitted without it.
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, eventually, tick, "the serviceaccount controller should create the default service account")

	_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "worker"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	token, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "worker", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, token.Status.Token)
	review, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token.Status.Token},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.True(t, review.Status.Authenticated, "token should authenticate: %s", review.Status.Error)
	require.Equal(t, "system:serviceaccount:"+ns+":worker", review.Status.User.Username)

	labels := map[string]string{"app": "web"}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"node-role.kubernetes.io/edge": ""},
					// No kubelet confirms graceful termination yet; with a zero grace period the
					// apiserver deletes the pods as soon as the garbage collector asks.
					TerminationGracePeriodSeconds: ptr(int64(0)),
					Containers:                    []corev1.Container{{Name: "web", Image: "sedna/none:test"}},
				},
			},
		},
	}
	_, err = client.AppsV1().Deployments(ns).Create(ctx, deployment, metav1.CreateOptions{})
	require.NoError(t, err)
	var podNames []string
	require.Eventually(t, func() bool {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 2 {
			return false
		}
		podNames = podNames[:0]
		for _, pod := range pods.Items {
			if pod.Spec.NodeName != "edge-1" {
				return false
			}
			podNames = append(podNames, pod.Name)
		}
		return true
	}, eventually, tick, "the deployment's two pods should be created and bound to edge-1")
	replicaSets, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, replicaSets.Items, 1)
	require.Equal(t, "web", metav1.GetControllerOf(&replicaSets.Items[0]).Name)

	require.NoError(t, client.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{
		PropagationPolicy: ptr(metav1.DeletePropagationBackground),
	}))
	require.Eventually(t, func() bool {
		rs, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(rs.Items) != 0 {
			return false
		}
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0
	}, eventually, tick, "garbage collection should remove the replica set and pods %v", podNames)

	require.NoError(t, client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, eventually, tick, "the namespace controller should finish deleting %s", ns)

	pids := cluster.PIDs()
	require.Len(t, pids, 4)
	for name, pid := range pids {
		require.NoError(t, syscall.Kill(pid, 0), "%s (pid %d) should be running before Stop", name, pid)
	}
	stopped = true
	require.NoError(t, cluster.Stop())
	for name, pid := range pids {
		err := syscall.Kill(pid, 0)
		require.True(t, errors.Is(err, syscall.ESRCH), "%s (pid %d) should be gone after Stop, kill(0) = %v", name, pid, err)
	}
	require.NoError(t, cluster.Stop(), "a second Stop should be a no-op")
	t.Logf("whole test took %s", time.Since(started))
}

func ptr[T any](v T) *T { return &v }
