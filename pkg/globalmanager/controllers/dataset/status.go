package dataset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// Condition reasons the GM sets itself; the LC's reasons (IndexNotFound, OutsideAllowedRoots, ...)
// are passed through.
const (
	ReasonWaitingForNode = "WaitingForNode"
	ReasonCounted        = "Counted"
)

// computeStatus returns the status the dataset should have given the latest report.
func (c *Controller) computeStatus(ds *sednav1.Dataset) sednav1.DatasetStatus {
	status := *ds.Status.DeepCopy()
	status.ObservedGeneration = ds.Generation
	r, ok := c.latestReport(ds.Namespace + "/" + ds.Name)
	if !ok || r.node != ds.Spec.NodeName {
		// A report from a node the dataset no longer lives on says nothing about it.
		if meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady) == nil || ok {
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{
				Type: sednav1.ConditionReady, Status: metav1.ConditionUnknown, Reason: ReasonWaitingForNode,
				Message:            fmt.Sprintf("waiting for the LC on node %s to count the samples", ds.Spec.NodeName),
				ObservedGeneration: ds.Generation,
			})
		}
		return status
	}
	received := metav1.NewTime(r.receivedAt)
	if status.NumberOfSamples != r.samples || status.UpdateTime == nil {
		status.NumberOfSamples = r.samples
		status.UpdateTime = &received
	}
	condition := metav1.Condition{
		Type: sednav1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonCounted,
		Message:            fmt.Sprintf("%d samples in %s on node %s", r.samples, ds.Spec.URL, r.node),
		ObservedGeneration: ds.Generation,
	}
	if r.problem != nil {
		condition.Status = metav1.ConditionFalse
		condition.Reason = r.problem.Reason
		condition.Message = r.problem.Message
	}
	meta.SetStatusCondition(&status.Conditions, condition)
	return status
}

// updateStatus writes the computed status through /status when it changed.
func (c *Controller) updateStatus(ctx context.Context, cached *sednav1.Dataset) error {
	status := c.computeStatus(cached)
	if equality.Semantic.DeepEqual(cached.Status, status) {
		return nil
	}
	ds := cached.DeepCopy()
	oldReady := meta.FindStatusCondition(ds.Status.Conditions, sednav1.ConditionReady)
	ds.Status = status
	if _, err := c.client.SednaV1alpha1().Datasets(ds.Namespace).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the status of dataset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	newReady := meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady)
	if newReady != nil && (oldReady == nil || oldReady.Reason != newReady.Reason) {
		eventType := corev1.EventTypeNormal
		if newReady.Status == metav1.ConditionFalse {
			eventType = corev1.EventTypeWarning
		}
		c.recorder.Event(ds, eventType, newReady.Reason, newReady.Message)
	}
	klog.FromContext(ctx).V(2).Info("Updated dataset status", "dataset", klog.KObj(ds), "samples", status.NumberOfSamples)
	return nil
}
