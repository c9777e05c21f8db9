//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/sedna-go/sedna/test/chaos"
	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
	"github.com/sedna-go/sedna/test/netns"
)

// A short fault campaign (test/chaos) with a fixed seed: at least ten faults while the joint
// inference example answers a steady load and the campaign's test workers send reports with
// IDs; then every invariant of the campaign's table must hold.
//
// As root it runs on a local Sedna of its own (two edge nodes in network namespaces, subnet 8,
// beside make chaos's 7; their stores on tmpfs; a standby GM), as make chaos does: partitions
// are links going down, and full stores are among the faults. Otherwise it runs on the suite's
// local Sedna, without relay or standby GM: partitions are LC freezes (SIGSTOP), a killed GM is
// restarted at once. CHAOS_NETNS=0 chooses the latter as root too.
func TestChaosShortCampaign(t *testing.T) {
	ctx := context.Background()
	cfg := chaos.Config{Seed: 20261205, Faults: 12, Duration: 3 * time.Minute, Logf: t.Logf}
	s := framework.Sedna
	var network *netns.Network
	why := netns.Available()
	if why == nil && os.Getenv("CHAOS_NETNS") == "0" {
		why = errors.New("CHAOS_NETNS=0")
	}
	if why != nil {
		t.Logf("not root (%v): the campaign runs on the suite's local Sedna without network namespaces", why)
		cfg.Namespace = framework.NewNamespace(t)
	} else {
		dir := filepath.Join(localcluster.RepoRoot(), "_output", "e2e-chaos")
		st, err := chaos.StartSedna(ctx, chaos.SetupOptions{Dir: dir, Subnet: 8, EdgeNodes: 2, Logf: t.Logf})
		t.Cleanup(func() {
			if err := st.Close(dir, !t.Failed()); err != nil {
				t.Errorf("stopping the campaign's local Sedna: %v", err)
			}
		})
		require.NoError(t, err)
		s, network = st.Sedna, st.Network
		seed, faults, duration, logf := cfg.Seed, cfg.Faults, cfg.Duration, cfg.Logf
		cfg = st.Config()
		cfg.Seed, cfg.Faults, cfg.Duration, cfg.Logf = seed, faults, duration, logf
		// Short partitions: the campaign must stay short.
		cfg.MaxPartition = 20 * time.Second
	}
	res, err := chaos.Run(ctx, s, cfg)
	if res != nil {
		t.Log("\n" + res.Table())
	}
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Injected, 10)
	require.Empty(t, res.Failed(), "invariants that did not hold")
	if network != nil {
		partitionUntilNotReady(t, s.Kube, network)
	}
}

// partitionUntilNotReady cuts edge node 1 off until the node lifecycle controller has marked it
// NotReady and every running pod on it not ready, as it does with a KubeEdge edge node cut off
// from CloudCore; after the link comes back the node is Ready again and so is its LC's pod, whose
// status the node puts right (nothing else undoes the controller's write). The LC's pod is the
// one followed through: the campaign's test reporters end and restart on their own.
func partitionUntilNotReady(t *testing.T, kube kubernetes.Interface, network *netns.Network) {
	ctx := context.Background()
	const node = "edge-node-1"
	onNode := metav1.ListOptions{FieldSelector: "spec.nodeName=" + node}
	podReady := func(pod *corev1.Pod) bool {
		return pod.Status.Phase == corev1.PodRunning && slices.ContainsFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		})
	}
	nodeReady := func() (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return localcluster.NodeReady(n), nil
	}
	// lcReady reports whether the node is Ready and its LC's pod (the first seen, then the same
	// UID) is ready.
	var lcUID types.UID
	lcReady := func() (bool, string) {
		ready, err := nodeReady()
		if err != nil || !ready {
			return false, fmt.Sprintf("node Ready %v (%v)", ready, err)
		}
		pods, err := kube.CoreV1().Pods(localsedna.SednaNamespace).List(ctx, onNode)
		if err != nil || len(pods.Items) != 1 {
			return false, fmt.Sprintf("LC pods on the node: %d (%v)", len(pods.Items), err)
		}
		lc := &pods.Items[0]
		if lcUID == "" {
			lcUID = lc.UID
		}
		if lc.UID != lcUID {
			return false, fmt.Sprintf("LC pod %s is another pod than the one cut off", lc.Name)
		}
		return podReady(lc), fmt.Sprintf("LC pod %s ready: %v", lc.Name, podReady(lc))
	}
	framework.Eventually(t, time.Minute, node+" and its LC Ready before the partition", lcReady)
	require.NoError(t, network.Down(ctx, 1))
	down := time.Now()
	defer func() { _ = network.Up(context.Background(), 1) }() // after a failure; the link is up otherwise
	framework.Eventually(t, 3*time.Minute, node+" NotReady and its running pods not ready while cut off", func() (bool, string) {
		ready, err := nodeReady()
		if err != nil || ready {
			return false, fmt.Sprintf("node Ready %v (%v)", ready, err)
		}
		pods, err := kube.CoreV1().Pods("").List(ctx, onNode)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for i := range pods.Items {
			if pod := &pods.Items[i]; pod.Status.Phase == corev1.PodRunning {
				running++
				if podReady(pod) {
					return false, fmt.Sprintf("pod %s/%s still ready", pod.Namespace, pod.Name)
				}
			}
		}
		return running > 0, fmt.Sprintf("%d running pods, none ready", running)
	})
	notReadyAfter := time.Since(down)
	require.NoError(t, network.Up(ctx, 1))
	up := time.Now()
	framework.Eventually(t, 3*time.Minute, node+" and its LC Ready again after the partition", lcReady)
	t.Logf("%s cut off: NotReady with its pods not ready after %s; Ready with its LC ready %s after the link came back",
		node, notReadyAfter.Round(100*time.Millisecond), time.Since(up).Round(100*time.Millisecond))
}
