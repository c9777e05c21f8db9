package processnode

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
)

func newTestProvider(t *testing.T) (*podProvider, *fake.Clientset) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	opts := NodeOptions{Name: "edge-1", IP: "127.0.1.1", Root: t.TempDir(), Images: ImageTable{"sedna/shell": "/bin/sh"}}
	p := newPodProvider(ctx, client, nil, opts)
	t.Cleanup(p.stopAll)
	return p, client
}

func testPod(name, uid, script string, restart corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + uid)},
		Spec: corev1.PodSpec{
			NodeName: "edge-1", RestartPolicy: restart, TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{Name: "main", Image: "sedna/shell", Command: []string{"sh", "-c"}, Args: []string{script}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		}},
	}
}

func condition(status corev1.PodStatus, conditionType corev1.PodConditionType) *corev1.PodCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == conditionType {
			return &status.Conditions[i]
		}
	}
	return nil
}

func TestProviderReportsUnknownPodsAsNotFound(t *testing.T) {
	p, _ := newTestProvider(t)
	_, ctx := ktesting.NewTestContext(t)
	_, err := p.GetPod(ctx, "ns", "missing")
	require.True(t, errdefs.IsNotFound(err), "GetPod: %v", err)
	_, err = p.GetPodStatus(ctx, "ns", "missing")
	require.True(t, errdefs.IsNotFound(err), "GetPodStatus: %v", err)
	err = p.DeletePod(ctx, testPod("missing", "1", "true", corev1.RestartPolicyNever))
	require.True(t, errdefs.IsNotFound(err), "DeletePod: %v", err)
	err = p.UpdatePod(ctx, testPod("missing", "1", "true", corev1.RestartPolicyNever))
	require.True(t, errdefs.IsNotFound(err), "UpdatePod: %v", err)
}

// TestProviderNotifiesEachStatusChangeOnce follows a container that fails and is restarted: every
// restart is a new status to push, an unchanged status is not pushed again, and the Ready
// condition's transition time only moves when Ready changes.
func TestProviderNotifiesEachStatusChangeOnce(t *testing.T) {
	p, _ := newTestProvider(t)
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod("crashing", "1", "sleep 0.3; exit 1", corev1.RestartPolicyAlways)
	require.NoError(t, p.CreatePod(ctx, pod))
	require.NoError(t, p.CreatePod(ctx, pod), "a repeated create of the same pod is a no-op")

	first := p.changedPods()
	require.Len(t, first, 1)
	require.Equal(t, "127.0.1.1", first[0].Status.PodIP)
	require.NotNil(t, condition(first[0].Status, corev1.PodScheduled), "the scheduler's condition is carried over")
	require.NotNil(t, condition(first[0].Status, corev1.PodInitialized))

	require.Eventually(t, func() bool {
		status, err := p.GetPodStatus(ctx, "ns", "crashing")
		require.NoError(t, err)
		return status.ContainerStatuses[0].RestartCount >= 1
	}, 10*time.Second, 20*time.Millisecond, "the container should be restarted")
	changed := p.changedPods()
	require.Len(t, changed, 1, "the restart is a status change")
	require.GreaterOrEqual(t, changed[0].Status.ContainerStatuses[0].RestartCount, int32(1))

	// A steady pod is pushed once when it starts running and not again while nothing changes; the
	// transition times of its conditions stay put across polls.
	steady := testPod("steady", "2", "sleep 300", corev1.RestartPolicyAlways)
	require.NoError(t, p.CreatePod(ctx, steady))
	var running *corev1.Pod
	require.Eventually(t, func() bool {
		for _, pod := range p.changedPods() {
			if pod.Name == "steady" && pod.Status.Phase == corev1.PodRunning && pod.Status.ContainerStatuses[0].State.Running != nil {
				running = pod
			}
		}
		return running != nil
	}, 10*time.Second, 20*time.Millisecond, "the steady pod should be pushed as Running")
	for _, pod := range p.changedPods() {
		require.NotEqual(t, "steady", pod.Name, "an unchanged status must not be pushed again")
	}
	status, err := p.GetPodStatus(ctx, "ns", "steady")
	require.NoError(t, err)
	readyBefore, readyNow := condition(running.Status, corev1.PodReady), condition(*status, corev1.PodReady)
	require.Equal(t, corev1.ConditionTrue, readyNow.Status)
	require.Equal(t, readyBefore.LastTransitionTime, readyNow.LastTransitionTime)
}

func TestProviderReportsFailureAndDeletesConfirmed(t *testing.T) {
	p, client := newTestProvider(t)
	_, ctx := ktesting.NewTestContext(t)
	failing := testPod("fails", "1", "exit 3", corev1.RestartPolicyNever)
	require.NoError(t, p.CreatePod(ctx, failing))
	require.Eventually(t, func() bool {
		status, err := p.GetPodStatus(ctx, "ns", "fails")
		require.NoError(t, err)
		terminated := status.ContainerStatuses[0].State.Terminated
		return status.Phase == corev1.PodFailed && terminated != nil && terminated.ExitCode == 3
	}, 10*time.Second, 20*time.Millisecond, "the pod should fail with exit code 3")
	ready := condition(p.changedPods()[0].Status, corev1.PodReady)
	require.Equal(t, corev1.ConditionFalse, ready.Status)

	sleeper := testPod("sleeper", "2", "sleep 300", corev1.RestartPolicyAlways)
	_, err := client.CoreV1().Pods("ns").Create(ctx, sleeper, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, p.CreatePod(ctx, sleeper))
	pods, err := p.GetPods(ctx)
	require.NoError(t, err)
	require.Len(t, pods, 2)

	// A pod of the same name but another UID is not this node's to delete.
	impostor := sleeper.DeepCopy()
	impostor.UID = "uid-other"
	require.True(t, errdefs.IsNotFound(p.DeletePod(ctx, impostor)))

	deleting := sleeper.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	require.NoError(t, p.DeletePod(ctx, deleting))
	_, err = p.GetPod(ctx, "ns", "sleeper")
	require.True(t, errdefs.IsNotFound(err), "a deleted pod is forgotten: %v", err)
	_, err = client.CoreV1().Pods("ns").Get(ctx, "sleeper", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the node confirms the deletion in the API: %v", err)
}

// A status someone else changed in the API server (the node lifecycle controller marks the pods
// of a node it lost not ready) is pushed again, as the kubelet's status manager does; a status
// that matches, or a pod of the same name but another UID, is left alone.
func TestProviderPushesAgainAStatusChangedInTheAPIServer(t *testing.T) {
	p, _ := newTestProvider(t)
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod("steady", "1", "sleep 300", corev1.RestartPolicyAlways)
	require.NoError(t, p.CreatePod(ctx, pod))
	var pushed *corev1.Pod
	require.Eventually(t, func() bool {
		for _, changed := range p.changedPods() {
			if changed.Status.Phase == corev1.PodRunning && condition(changed.Status, corev1.PodReady).Status == corev1.ConditionTrue {
				pushed = changed
			}
		}
		return pushed != nil
	}, 10*time.Second, 20*time.Millisecond, "the pod should be pushed as Running and Ready")

	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	p.apiPods = corelisters.NewPodLister(indexer)
	require.NoError(t, indexer.Add(pushed.DeepCopy()))
	require.Empty(t, p.driftedPods(), "the API server holds what was pushed")

	notReady := pushed.DeepCopy()
	notReady.ResourceVersion = "2"
	condition(notReady.Status, corev1.PodReady).Status = corev1.ConditionFalse
	require.NoError(t, indexer.Update(notReady))
	drifted := p.driftedPods()
	require.Len(t, drifted, 1)
	require.Equal(t, corev1.ConditionTrue, condition(drifted[0].Status, corev1.PodReady).Status)
	// virtual-kubelet drops a notification equal to the last one it got (cmp.Equal on the pod).
	require.NotEqual(t, pushed, drifted[0], "the push again must differ from the last push")
	require.Equal(t, "2", drifted[0].ResourceVersion, "with the API server's resourceVersion")

	other := notReady.DeepCopy()
	other.UID = "uid-other"
	require.NoError(t, indexer.Update(other))
	require.Empty(t, p.driftedPods(), "a pod of the same name but another UID is not this one")
}
