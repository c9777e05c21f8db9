package federatedlearning

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Condition reasons.
const (
	// reasonDoTraining is upstream's Training reason, with message "Round <n> reaches at <time>".
	reasonDoTraining = "DoTraining"
	// reasonRoundDeadline: ClientsLate is True, the newest round closed without some workers.
	reasonRoundDeadline = "RoundDeadline"
	// reasonAllClientsReported: ClientsLate is False, the newest round had every worker.
	reasonAllClientsReported = "AllClientsReported"
	reasonWorkerFailed       = "WorkerFailed"
	reasonWorkersSucceeded   = "WorkersSucceeded"
	reasonResolved           = "Resolved"
	// reasonAggregationEnded: TrainersStranded is True, reasonTrainersEnded: it is False again.
	reasonAggregationEnded = "AggregationEnded"
	reasonTrainersEnded    = "TrainersEnded"
)

// strandedGrace is how long training workers may run on after the aggregation worker succeeded
// before the job says they are stranded. A trainer ends once it has the final model and its LC
// took its last report: the aggregator waits (its exit grace, 60 s) for every participant to
// have the model, and the Go trainer sends a last report the LC refuses again for up to 2 minutes
// (federated.DefaultFinalReportTimeout). One still running 4 minutes after the aggregator ended
// missed the end and dials an aggregator that is gone.
const strandedGrace = 4 * time.Minute

// markStranded sets TrainersStranded from the current pods (those of the current spec and
// generation): True, naming the training workers still running, once the aggregation worker has
// succeeded for strandedGrace; False when a job that said so no longer has any. It returns how
// long until the condition may turn True (0: no need to look again for it).
func markStranded(job *sednav1.FederatedLearningJob, status *sednav1.FLJobStatus, pods, desired []*corev1.Pod, now time.Time) time.Duration {
	wanted := make(map[string]*corev1.Pod, len(desired))
	for _, want := range desired {
		wanted[want.Name] = want
	}
	var ended time.Time
	var running []string
	for _, pod := range pods {
		if want := wanted[pod.Name]; want == nil || !current(pod, want) {
			continue // being replaced after an edit, or not the job's now
		}
		switch {
		case pod.Labels[workerTypeLabel] == aggregationWorkerType && pod.Status.Phase == corev1.PodSucceeded:
			ended = workers.PodFinished(pod)
		case pod.Labels[workerTypeLabel] == trainWorkerType && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
			running = append(running, pod.Name)
		}
	}
	stranded := meta.FindStatusCondition(status.Conditions, sednav1.ConditionTrainersStranded)
	if ended.IsZero() || len(running) == 0 {
		if stranded != nil && stranded.Status == metav1.ConditionTrue {
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{
				Type: sednav1.ConditionTrainersStranded, Status: metav1.ConditionFalse, ObservedGeneration: job.Generation,
				Reason: reasonTrainersEnded, Message: "no training worker runs without the aggregation worker",
			})
		}
		return 0
	}
	if wait := ended.Add(strandedGrace).Sub(now); wait > 0 {
		return wait
	}
	slices.Sort(running)
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: sednav1.ConditionTrainersStranded, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation,
		Reason: reasonAggregationEnded,
		Message: fmt.Sprintf("the aggregation worker ended at %s and training workers %s still run: they missed the end of training "+
			"and wait for an aggregator that will not come back; the aggregated model is final; delete the job to end it",
			ended.UTC().Format(time.RFC3339), strings.Join(running, ", ")),
	})
	return 0
}

// finished reports whether the job ended (Complete or Failed) at its current generation.
func finished(status *sednav1.FLJobStatus, generation int64) bool {
	for _, t := range []string{sednav1.ConditionComplete, sednav1.ConditionFailed} {
		if c := meta.FindStatusCondition(status.Conditions, t); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation {
			return true
		}
	}
	return false
}

// restartIfEdited reopens a job that ended at an earlier generation: the edited spec is run, its
// workers replaced by pods built from it.
func restartIfEdited(job *sednav1.FederatedLearningJob, status *sednav1.FLJobStatus) {
	reopened := false
	for _, t := range []string{sednav1.ConditionComplete, sednav1.ConditionFailed} {
		if c := meta.FindStatusCondition(status.Conditions, t); c != nil && c.ObservedGeneration != job.Generation {
			meta.RemoveStatusCondition(&status.Conditions, t)
			reopened = true
		}
	}
	if reopened {
		status.CompletionTime = nil
	}
}

// applyReports shows the training workers' reports: the newest round (Training), whether it
// closed without some workers (ClientsLate) and the aggregated model's metrics. A GM that
// restarted has no reports yet and keeps what the status says.
func applyReports(status *sednav1.FLJobStatus, reports *jobReports, generation int64) {
	if reports == nil {
		return
	}
	if reports.round > 0 && reports.round >= status.Round {
		status.Round = reports.round
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionTraining, Status: metav1.ConditionTrue, ObservedGeneration: generation,
			Reason: reasonDoTraining, Message: fmt.Sprintf("Round %d reaches at %s", reports.round, reports.roundTime),
		})
	}
	if reports.latenessKnown {
		late := metav1.Condition{Type: sednav1.ConditionClientsLate, ObservedGeneration: generation}
		switch {
		case len(reports.late) > 0:
			late.Status, late.Reason = metav1.ConditionTrue, reasonRoundDeadline
			late.Message = fmt.Sprintf("round %d closed at its deadline without %s", reports.latenessRound, strings.Join(reports.late, ", "))
		case reports.roundClients > 0 && reports.roundClients < reports.participants:
			// The aggregator names only the clients it has seen: the others never joined it.
			late.Status, late.Reason = metav1.ConditionTrue, reasonRoundDeadline
			late.Message = fmt.Sprintf("round %d closed with %d of %d training workers (the others have not joined the aggregator)",
				reports.latenessRound, reports.roundClients, reports.participants)
		default:
			late.Status, late.Reason = metav1.ConditionFalse, reasonAllClientsReported
			late.Message = fmt.Sprintf("round %d had every training worker", reports.latenessRound)
		}
		if reports.lateUpdates > 0 {
			late.Message += fmt.Sprintf("; %d late updates discarded so far", reports.lateUpdates)
		}
		meta.SetStatusCondition(&status.Conditions, late)
	}
	if len(reports.metrics) > 0 {
		status.Metrics = metricsString(reports.metrics)
	}
}

// workerRole names a worker pod in messages.
func workerRole(pod *corev1.Pod) string {
	if pod.Labels[workerTypeLabel] == aggregationWorkerType {
		return "the aggregation worker"
	}
	return "training worker " + pod.Labels[indexLabel]
}

// computeStatus derives the phase, counts and conditions from the pods. The job fails when one
// of its current workers (a pod built from the current spec) failed, naming it; it succeeds when
// every training worker succeeded and no worker is active. Both are final for the generation.
func computeStatus(job *sednav1.FederatedLearningJob, status *sednav1.FLJobStatus, block *runtime.Blocker,
	pods, desired []*corev1.Pod, now time.Time) {
	status.Active, status.Succeeded, status.Failed = 0, 0, 0
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			status.Succeeded++
		case corev1.PodFailed:
			status.Failed++
		default:
			status.Active++
		}
	}
	if block != nil {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: job.Generation,
			Reason: block.Reason, Message: block.Message,
		})
	} else if meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady) != nil || desired != nil {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation,
			Reason: reasonResolved, Message: "the job's models, datasets and credentials are found",
		})
	}
	if !finished(status, job.Generation) {
		decide(job, status, pods, desired, now)
	}
	if finished(status, job.Generation) {
		if training := meta.FindStatusCondition(status.Conditions, sednav1.ConditionTraining); training != nil {
			training.Status = metav1.ConditionFalse
		}
	}
}

// decide sets Failed or Complete when the current workers say so, else the running phase.
func decide(job *sednav1.FederatedLearningJob, status *sednav1.FLJobStatus, pods, desired []*corev1.Pod, now time.Time) {
	byName := map[string]*corev1.Pod{}
	for _, pod := range pods {
		byName[pod.Name] = pod
	}
	var failed []string
	trainingSucceeded, training, currentPods := 0, 0, 0
	for _, want := range desired {
		pod := byName[want.Name]
		if want.Labels[workerTypeLabel] == trainWorkerType {
			training++
		}
		if !current(pod, want) {
			continue
		}
		currentPods++
		switch pod.Status.Phase {
		case corev1.PodFailed:
			failed = append(failed, fmt.Sprintf("pod %s (%s) failed: %s", pod.Name, workerRole(pod), workers.PodFailure(pod)))
		case corev1.PodSucceeded:
			if pod.Labels[workerTypeLabel] == trainWorkerType {
				trainingSucceeded++
			}
		}
	}
	end := metav1.NewTime(now)
	switch {
	case len(failed) > 0:
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation,
			Reason: reasonWorkerFailed, Message: strings.Join(failed, "; "),
		})
		status.Phase, status.CompletionTime = sednav1.PhaseFailed, &end
	case training > 0 && trainingSucceeded == training && currentPods == len(desired) && status.Active == 0:
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionComplete, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation,
			Reason: reasonWorkersSucceeded, Message: fmt.Sprintf("the %d training workers succeeded", training),
		})
		status.Phase, status.CompletionTime = sednav1.PhaseSucceeded, &end
	case status.Active > 0 || status.Succeeded > 0 || status.Failed > 0:
		status.Phase = sednav1.PhaseRunning
	default:
		status.Phase = sednav1.PhasePending
	}
}

// recordTransitions turns condition changes into events, once per change rather than per sync.
func (c *Controller) recordTransitions(job *sednav1.FederatedLearningJob, old, updated *sednav1.FLJobStatus) {
	changed := func(t string) *metav1.Condition {
		n := meta.FindStatusCondition(updated.Conditions, t)
		o := meta.FindStatusCondition(old.Conditions, t)
		if n == nil || (o != nil && o.Status == n.Status && o.Reason == n.Reason && o.ObservedGeneration == n.ObservedGeneration) {
			return nil
		}
		return n
	}
	if ready := changed(sednav1.ConditionReady); ready != nil && ready.Status == metav1.ConditionFalse {
		c.recorder.Event(job, corev1.EventTypeWarning, ready.Reason, ready.Message)
	}
	if failed := changed(sednav1.ConditionFailed); failed != nil && failed.Status == metav1.ConditionTrue {
		c.recorder.Event(job, corev1.EventTypeWarning, reasonWorkerFailed, failed.Message)
	}
	if complete := changed(sednav1.ConditionComplete); complete != nil && complete.Status == metav1.ConditionTrue {
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", complete.Message)
	}
	if late := changed(sednav1.ConditionClientsLate); late != nil && late.Status == metav1.ConditionTrue {
		c.recorder.Event(job, corev1.EventTypeWarning, late.Reason, late.Message)
	}
	if stranded := changed(sednav1.ConditionTrainersStranded); stranded != nil && stranded.Status == metav1.ConditionTrue {
		c.recorder.Event(job, corev1.EventTypeWarning, stranded.Reason, stranded.Message)
	}
}
