package jointinference

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Ready and Failed condition reasons about the workers.
const (
	reasonWorkersAvailable       = "WorkersAvailable"
	reasonWorkersUnavailable     = "WorkersUnavailable"
	reasonCloudWorkerUnavailable = "CloudWorkerUnavailable"
	reasonEdgeWorkerUnavailable  = "EdgeWorkerUnavailable"
	// reasonProgressDeadlineExceeded is the Deployment controller's own reason, kept as is.
	reasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
)

// The ReportsDropped condition: True (reason OutboxFull) while an LC reports that it refused
// edge workers' reports because its outbox was full.
const (
	conditionReportsDropped = "ReportsDropped"
	reasonOutboxFull        = "OutboxFull"
	reasonReportsDelivered  = "ReportsDelivered"
)

// deploymentFailed returns the reason a Deployment gave up rolling out, or "". A worker failed
// when its Deployment reports ProgressDeadlineExceeded: pods that crash, cannot pull their image
// or cannot be scheduled keep the rollout from progressing until the deadline (600 s unless the
// template's Deployment says otherwise). Counting crashing pods directly would need a pod
// informer and a threshold of restarts; the Deployment's verdict is simpler and is what
// `kubectl rollout status` reports too.
func deploymentFailed(d *appsv1.Deployment) string {
	if d == nil {
		return ""
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == reasonProgressDeadlineExceeded {
			return fmt.Sprintf("deployment %s: %s", d.Name, c.Message)
		}
	}
	return ""
}

// computeStatus derives the status from the service's workers. Failed is not terminal: a later
// sync that finds the workers progressing again removes it.
func (c *Controller) computeStatus(ji *sednav1.JointInferenceService, block *blocker, deployments workerDeployments) *sednav1.JointInferenceServiceStatus {
	status := ji.Status.DeepCopy()
	status.ObservedGeneration = ji.Generation
	if status.StartTime == nil {
		now := c.now()
		status.StartTime = &now
	}
	owner := ownerOf(ji)
	cloudName, edgeName := workers.DeploymentName(owner, cloudWorkerType), workers.DeploymentName(owner, edgeWorkerType)
	cloudAvailable, edgeAvailable := workers.DeploymentAvailable(deployments.cloud), workers.DeploymentAvailable(deployments.edge)
	status.Active = 0
	for _, ok := range []bool{cloudAvailable, edgeAvailable} {
		if ok {
			status.Active++
		}
	}
	var failures []string
	for _, d := range []*appsv1.Deployment{deployments.cloud, deployments.edge} {
		if msg := deploymentFailed(d); msg != "" {
			failures = append(failures, msg)
		}
	}
	status.Failed = int32(len(failures))

	ready := metav1.Condition{Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: ji.Generation}
	switch {
	case block != nil:
		ready.Reason, ready.Message = block.Reason, block.Message
	case cloudAvailable && edgeAvailable:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, reasonWorkersAvailable, "the cloud and edge workers are available"
	case !cloudAvailable && !edgeAvailable:
		ready.Reason = reasonWorkersUnavailable
		ready.Message = fmt.Sprintf("deployments %s and %s have no available replica", cloudName, edgeName)
	case !cloudAvailable:
		ready.Reason, ready.Message = reasonCloudWorkerUnavailable, fmt.Sprintf("deployment %s has no available replica", cloudName)
	default:
		ready.Reason, ready.Message = reasonEdgeWorkerUnavailable, fmt.Sprintf("deployment %s has no available replica", edgeName)
	}
	meta.SetStatusCondition(&status.Conditions, ready)

	if len(failures) > 0 {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: ji.Generation,
			Reason: reasonProgressDeadlineExceeded, Message: strings.Join(failures, "; "),
		})
	} else {
		meta.RemoveStatusCondition(&status.Conditions, sednav1.ConditionFailed)
	}

	switch {
	case len(failures) > 0:
		status.Phase = sednav1.PhaseFailed
	case deployments.cloud != nil || deployments.edge != nil:
		status.Phase = sednav1.PhaseRunning
	default:
		status.Phase = sednav1.PhasePending
	}
	return status
}

// recordTransitions turns condition changes into events, once per change rather than per sync.
func (c *Controller) recordTransitions(ji *sednav1.JointInferenceService, old, updated *sednav1.JointInferenceServiceStatus) {
	oldReady := meta.FindStatusCondition(old.Conditions, sednav1.ConditionReady)
	newReady := meta.FindStatusCondition(updated.Conditions, sednav1.ConditionReady)
	if newReady != nil && (oldReady == nil || oldReady.Reason != newReady.Reason) {
		eventType := corev1.EventTypeNormal
		switch newReady.Reason {
		case reasonModelNotFound, reasonCredentialNotFound, reasonInvalidCredential, reasonInvalidSpec, reasonWorkerTokenConflict:
			eventType = corev1.EventTypeWarning
		}
		c.recorder.Event(ji, eventType, newReady.Reason, newReady.Message)
	}
	if failed := meta.FindStatusCondition(updated.Conditions, sednav1.ConditionFailed); failed != nil &&
		!meta.IsStatusConditionTrue(old.Conditions, sednav1.ConditionFailed) {
		c.recorder.Event(ji, corev1.EventTypeWarning, "WorkerFailed", failed.Message)
	}
}

// setReportsDropped says whether an LC refused the edge workers' reports because its outbox was
// full: the metrics then lag behind what the workers counted. Absent until it first happens.
func setReportsDropped(status *sednav1.JointInferenceServiceStatus, generation int64, dropped map[string]uint64) {
	if len(dropped) == 0 {
		if meta.FindStatusCondition(status.Conditions, conditionReportsDropped) != nil {
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{
				Type: conditionReportsDropped, Status: metav1.ConditionFalse, ObservedGeneration: generation,
				Reason: reasonReportsDelivered, Message: "the LCs deliver the workers' reports again",
			})
		}
		return
	}
	nodes := slices.Sorted(maps.Keys(dropped))
	parts := make([]string, 0, len(nodes))
	for _, node := range nodes {
		parts = append(parts, fmt.Sprintf("the LC on node %s refused %d reports", node, dropped[node]))
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: conditionReportsDropped, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: reasonOutboxFull, Message: strings.Join(parts, "; ") + " about this service because its outbox was full; the metrics may lag",
	})
}
