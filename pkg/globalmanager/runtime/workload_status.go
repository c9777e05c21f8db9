package runtime

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Condition reasons of the services' and jobs' status written by SetServiceStatus and
// SetJobStatus.
const (
	ReasonWorkersReady       = "WorkersReady"
	ReasonWorkersNotReady    = "WorkersNotReady"
	ReasonWorkerFailed       = "WorkerFailed"
	ReasonWorkerSucceeded    = "WorkerSucceeded"
	ReasonBackoffLimitExceed = "BackoffLimitExceeded"
	ReasonWorkerRunning      = "WorkerRunning"
	ReasonWorkerPending      = "WorkerPending"
)

// WorkerGroup is one group of a service's workers: a Deployment or a set of bare pods.
type WorkerGroup struct {
	// Name is the worker type, as messages name the group ("reidworker").
	Name string
	// Condition is the group's own condition type ("ReidWorkersReady"); "" writes none.
	Condition  string
	Deployment *appsv1.Deployment
	Pods       []*corev1.Pod
	// Want is how many ready pods make the group ready: the Deployment's replicas or the number
	// of pods the spec asks for.
	Want int32
}

// GroupReadiness is how far one worker group is ready.
type GroupReadiness struct {
	Name, Condition string
	Ready, Want     int32
	// Failure says why the group failed ("" when it has not): a Deployment past its progress
	// deadline, a pod that failed.
	Failure string
	// Exists tells whether any of the group's children exists.
	Exists bool
}

// ReadinessOf counts the group's ready pods: a Deployment's available replicas, or the pods that
// run with condition Ready.
func ReadinessOf(g WorkerGroup) GroupReadiness {
	r := GroupReadiness{Name: g.Name, Condition: g.Condition, Want: g.Want}
	if d := g.Deployment; d != nil {
		r.Exists = true
		r.Ready = d.Status.AvailableReplicas
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				r.Failure = fmt.Sprintf("deployment %s: %s", d.Name, c.Message)
			}
		}
	}
	var failures []string
	for _, pod := range g.Pods {
		r.Exists = true
		if pod.DeletionTimestamp != nil {
			continue
		}
		if pod.Status.Phase == corev1.PodFailed {
			failures = append(failures, fmt.Sprintf("pod %s: %s", pod.Name, workers.PodFailure(pod)))
			continue
		}
		if pod.Status.Phase == corev1.PodRunning && podReady(pod) {
			r.Ready++
		}
	}
	if len(failures) > 0 {
		r.Failure = strings.Join(failures, "; ")
	}
	return r
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// SetServiceStatus writes a multi-edge service's status from its worker groups: Active is the
// number of ready worker pods, Failed the number of failed groups; condition Ready is True when
// every group has as many ready pods as it wants, with one condition per group (its
// Condition) saying how many; Failed is set while a group failed and removed when none does
// (not terminal: a Deployment or pod that recovers clears it). A blocker (a missing Model, a
// worker-token conflict) makes Ready False with its reason. phase is Failed, Running once a
// child exists, else Pending.
func SetServiceStatus(status *sednav1.ServiceStatus, generation int64, now metav1.Time, block *Blocker, groups []GroupReadiness) {
	status.ObservedGeneration = generation
	if status.StartTime == nil {
		status.StartTime = &now
	}
	status.Active, status.Failed = 0, 0
	var parts, failures []string
	allReady, exists := true, false
	for _, g := range groups {
		status.Active += g.Ready
		exists = exists || g.Exists
		groupReady := g.Ready >= g.Want && g.Failure == ""
		allReady = allReady && groupReady
		msg := fmt.Sprintf("%s %d/%d ready", g.Name, min(g.Ready, g.Want), g.Want)
		parts = append(parts, msg)
		if g.Failure != "" {
			status.Failed++
			failures = append(failures, g.Failure)
		}
		if g.Condition == "" {
			continue
		}
		c := metav1.Condition{Type: g.Condition, Status: metav1.ConditionFalse, ObservedGeneration: generation,
			Reason: ReasonWorkersNotReady, Message: msg}
		if groupReady {
			c.Status, c.Reason = metav1.ConditionTrue, ReasonWorkersReady
		}
		if g.Failure != "" {
			c.Reason, c.Message = ReasonWorkerFailed, g.Failure
		}
		meta.SetStatusCondition(&status.Conditions, c)
	}
	ready := metav1.Condition{Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: generation,
		Reason: ReasonWorkersNotReady, Message: strings.Join(parts, ", ")}
	switch {
	case block != nil:
		ready.Reason, ready.Message = block.Reason, block.Message
	case allReady:
		ready.Status, ready.Reason = metav1.ConditionTrue, ReasonWorkersReady
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	if len(failures) > 0 {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue,
			ObservedGeneration: generation, Reason: ReasonWorkerFailed, Message: strings.Join(failures, "; ")})
	} else {
		meta.RemoveStatusCondition(&status.Conditions, sednav1.ConditionFailed)
	}
	switch {
	case len(failures) > 0:
		status.Phase = sednav1.PhaseFailed
	case exists:
		status.Phase = sednav1.PhaseRunning
	default:
		status.Phase = sednav1.PhasePending
	}
}

// JobProgress is where a pod-based job stands, from its pods (one at a time, one pod per
// attempt).
type JobProgress struct {
	// Active counts the pods that have not ended (pending or running), Running those running.
	Active, Running, Succeeded, Failed int32
	// Attempt is the attempt whose pod should exist now (1 for the first), 0 when the job is
	// finished.
	Attempt int
	// Finished is sednav1.ConditionCompleted or ConditionFailed once the job ended, else "".
	Finished string
	Reason   string
	Message  string
}

// ProgressOf counts a job's pods like a Kubernetes Job with parallelism and completions 1: a pod
// that succeeded completes the job; each failed pod is one failed attempt, and more failed
// attempts than backoffLimit fail the job (upstream's default, nil, allows none: the first
// failure is final, as upstream's). Pods being deleted count as neither.
func ProgressOf(pods []*corev1.Pod, backoffLimit *int32) JobProgress {
	var p JobProgress
	var lastFailure string
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			continue
		}
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			p.Succeeded++
		case corev1.PodFailed:
			p.Failed++
			lastFailure = fmt.Sprintf("pod %s: %s", pod.Name, workers.PodFailure(pod))
		case corev1.PodRunning:
			p.Active++
			p.Running++
		default:
			p.Active++
		}
	}
	limit := int32(0)
	if backoffLimit != nil {
		limit = *backoffLimit
	}
	switch {
	case p.Succeeded > 0:
		p.Finished, p.Reason, p.Message = sednav1.ConditionCompleted, ReasonWorkerSucceeded, "the worker succeeded"
	case p.Failed > limit:
		p.Finished, p.Reason = sednav1.ConditionFailed, ReasonWorkerFailed
		if limit > 0 {
			p.Reason = ReasonBackoffLimitExceed
		}
		p.Message = fmt.Sprintf("%d failed attempts, backoffLimit %d; last: %s", p.Failed, limit, lastFailure)
	default:
		p.Attempt = int(p.Failed) + 1
	}
	return p
}

// JobFinished tells whether the status already records the end of the job: a finished job is
// terminal, as a Kubernetes Job's, and builds no more pods.
func JobFinished(status *sednav1.JobStatus) bool {
	return meta.IsStatusConditionTrue(status.Conditions, sednav1.ConditionCompleted) ||
		meta.IsStatusConditionTrue(status.Conditions, sednav1.ConditionFailed)
}

// SetJobStatus writes a pod-based job's status from its progress. A finished job keeps its
// Completed or Failed condition, phase and completionTime; the counts still follow the pods.
func SetJobStatus(status *sednav1.JobStatus, generation int64, now metav1.Time, block *Blocker, p JobProgress) {
	status.ObservedGeneration = generation
	if status.StartTime == nil {
		status.StartTime = &now
	}
	status.Active, status.Succeeded, status.Failed = p.Active, p.Succeeded, p.Failed
	if JobFinished(status) {
		return
	}
	running := metav1.Condition{Type: sednav1.ConditionRunning, Status: metav1.ConditionFalse, ObservedGeneration: generation}
	switch {
	case p.Finished != "":
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: p.Finished, Status: metav1.ConditionTrue,
			ObservedGeneration: generation, Reason: p.Reason, Message: p.Message})
		running.Reason, running.Message = p.Reason, "the job ended"
		status.CompletionTime = &now
		status.Phase = sednav1.PhaseSucceeded
		if p.Finished == sednav1.ConditionFailed {
			status.Phase = sednav1.PhaseFailed
		}
	case block != nil:
		running.Reason, running.Message = block.Reason, block.Message
		status.Phase = sednav1.PhasePending
	case p.Running > 0:
		running.Status, running.Reason, running.Message = metav1.ConditionTrue, ReasonWorkerRunning, fmt.Sprintf("attempt %d runs", p.Attempt)
		status.Phase = sednav1.PhaseRunning
	default:
		running.Reason, running.Message = ReasonWorkerPending, fmt.Sprintf("attempt %d is being created", p.Attempt)
		status.Phase = sednav1.PhasePending
	}
	meta.SetStatusCondition(&status.Conditions, running)
}
