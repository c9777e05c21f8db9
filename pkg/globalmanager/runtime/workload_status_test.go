package runtime

import (
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func podIn(name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
}

func TestProgressOfCountsLikeAKubernetesJob(t *testing.T) {
	tests := map[string]struct {
		pods    []*corev1.Pod
		backoff *int32
		want    JobProgress
	}{
		"nothing yet": {want: JobProgress{Attempt: 1}},
		"pending":     {pods: []*corev1.Pod{podIn("a-1", corev1.PodPending)}, want: JobProgress{Active: 1, Attempt: 1}},
		"running":     {pods: []*corev1.Pod{podIn("a-1", corev1.PodRunning)}, want: JobProgress{Active: 1, Running: 1, Attempt: 1}},
		"failed once, no backoff limit: final": {pods: []*corev1.Pod{podIn("a-1", corev1.PodFailed)},
			want: JobProgress{Failed: 1, Finished: sednav1.ConditionFailed, Reason: ReasonWorkerFailed,
				Message: "1 failed attempts, backoffLimit 0; last: pod a-1: phase Failed"}},
		"failed once within backoffLimit 2": {pods: []*corev1.Pod{podIn("a-1", corev1.PodFailed)}, backoff: ptr.To[int32](2),
			want: JobProgress{Failed: 1, Attempt: 2}},
		"failed past backoffLimit 1": {pods: []*corev1.Pod{podIn("a-1", corev1.PodFailed), podIn("a-2", corev1.PodFailed)}, backoff: ptr.To[int32](1),
			want: JobProgress{Failed: 2, Finished: sednav1.ConditionFailed, Reason: ReasonBackoffLimitExceed,
				Message: "2 failed attempts, backoffLimit 1; last: pod a-2: phase Failed"}},
		"succeeded after a failure": {pods: []*corev1.Pod{podIn("a-1", corev1.PodFailed), podIn("a-2", corev1.PodSucceeded)}, backoff: ptr.To[int32](1),
			want: JobProgress{Failed: 1, Succeeded: 1, Finished: sednav1.ConditionCompleted, Reason: ReasonWorkerSucceeded, Message: "the worker succeeded"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, ProgressOf(tc.pods, tc.backoff))
		})
	}
}

func TestAFinishedJobStaysFinished(t *testing.T) {
	now := metav1.Now()
	var status sednav1.JobStatus
	SetJobStatus(&status, 1, now, nil, ProgressOf([]*corev1.Pod{podIn("a-1", corev1.PodSucceeded)}, nil))
	require.Equal(t, sednav1.PhaseSucceeded, status.Phase)
	require.True(t, JobFinished(&status))
	// The pod is gone later: the job keeps its result, the counts follow the pods.
	SetJobStatus(&status, 1, now, nil, ProgressOf(nil, nil))
	require.Equal(t, sednav1.PhaseSucceeded, status.Phase)
	require.True(t, meta.IsStatusConditionTrue(status.Conditions, sednav1.ConditionCompleted))
	require.Equal(t, int32(0), status.Succeeded)
}

func TestServiceStatusFailedIsNotTerminal(t *testing.T) {
	now := metav1.Now()
	stuck := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "too slow"}}}}
	var status sednav1.ServiceStatus
	SetServiceStatus(&status, 1, now, nil, []GroupReadiness{ReadinessOf(WorkerGroup{Name: "fe", Deployment: stuck, Want: 1})})
	require.Equal(t, sednav1.PhaseFailed, status.Phase)
	require.Equal(t, int32(1), status.Failed)
	require.Equal(t, "deployment d: too slow", meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed).Message)

	recovered := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Status: appsv1.DeploymentStatus{AvailableReplicas: 1}}
	SetServiceStatus(&status, 1, now, nil, []GroupReadiness{ReadinessOf(WorkerGroup{Name: "fe", Deployment: recovered, Want: 1})})
	require.Equal(t, sednav1.PhaseRunning, status.Phase)
	require.Nil(t, meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed))
	require.True(t, meta.IsStatusConditionTrue(status.Conditions, sednav1.ConditionReady))

	SetServiceStatus(&status, 1, now, &Blocker{Reason: "ModelNotFound", Message: "model \"m\" not found"},
		[]GroupReadiness{ReadinessOf(WorkerGroup{Name: "fe", Deployment: recovered, Want: 1})})
	ready := meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady)
	require.Equal(t, metav1.ConditionFalse, ready.Status)
	require.Equal(t, "ModelNotFound", ready.Reason)
}
