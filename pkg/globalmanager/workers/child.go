package workers

import (
	"fmt"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ChildUnchanged reports whether a child already carries the desired labels and spec hash.
func ChildUnchanged(actual, desired metav1.Object) bool {
	if actual.GetAnnotations()[SpecHashAnnotation] != desired.GetAnnotations()[SpecHashAnnotation] {
		return false
	}
	for k, v := range desired.GetLabels() {
		if actual.GetLabels()[k] != v {
			return false
		}
	}
	return true
}

// MarkDesired copies the desired labels and spec hash onto the child being updated.
func MarkDesired(updated, desired metav1.Object) {
	labels := maps.Clone(updated.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, desired.GetLabels())
	updated.SetLabels(labels)
	annotations := maps.Clone(updated.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[SpecHashAnnotation] = desired.GetAnnotations()[SpecHashAnnotation]
	updated.SetAnnotations(annotations)
}

// PodFailure says why a pod failed, as far as its status tells.
func PodFailure(pod *corev1.Pod) string {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range statuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("container %s exited with %d (%s)", s.Name, t.ExitCode, t.Reason)
			}
		}
	}
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		return strings.TrimSpace(pod.Status.Reason + " " + pod.Status.Message)
	}
	return "phase Failed"
}

// DeploymentAvailable reports whether at least one of the Deployment's pods serves.
func DeploymentAvailable(d *appsv1.Deployment) bool {
	if d == nil {
		return false
	}
	if d.Status.AvailableReplicas >= 1 {
		return true
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// PodFinished is when a pod that ended (failed or succeeded) ended: its last container's end, else
// its last condition change, else its creation.
func PodFinished(pod *corev1.Pod) time.Time {
	var end time.Time
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range statuses {
			if t := s.State.Terminated; t != nil && t.FinishedAt.After(end) {
				end = t.FinishedAt.Time
			}
		}
	}
	if end.IsZero() {
		for _, cond := range pod.Status.Conditions {
			if cond.LastTransitionTime.After(end) {
				end = cond.LastTransitionTime.Time
			}
		}
	}
	if end.IsZero() {
		end = pod.CreationTimestamp.Time
	}
	return end
}
