package incrementallearning

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Condition reasons; those of the stages and rounds are the shared ones (package staged).
const (
	// Ready: the inference worker.
	reasonWorkerAvailable   = "WorkerAvailable"
	reasonWorkerUnavailable = "WorkerUnavailable"
	// Ready, while the job's references keep its workers from being built.
	reasonDatasetNotFound    = "DatasetNotFound"
	reasonModelNotFound      = "ModelNotFound"
	reasonCredentialNotFound = runtime.ReasonCredentialNotFound
	reasonInvalidCredential  = runtime.ReasonInvalidCredential
	reasonInvalidSpec        = "InvalidSpec"
	// reasonWorkerTokenConflict: the job's worker-token Secret exists but is not usable.
	reasonWorkerTokenConflict = "WorkerTokenConflict"

	reasonWaitingForTrigger = staged.ReasonWaitingForTrigger
	reasonStagePodFailed    = staged.ReasonStagePodFailed
	reasonRoundStarted      = staged.ReasonRoundStarted
)

// blocker is a problem in the job's references that keeps its workers from being built.
type blocker = staged.Blocker

// progressOf is the part of the status the shared stage machine writes.
func progressOf(status *sednav1.ILJobStatus) staged.Status {
	return staged.Status{LearningProgress: &status.LearningProgress, Conditions: &status.Conditions}
}

// stateRank orders the states GM itself sets within a stage.
func stateRank(state sednav1.StageState) int { return staged.StateRank(state) }

// applyReport writes one LC stage report into status.
func applyReport(status *sednav1.ILJobStatus, report stageReport, generation int64) error {
	return staged.ApplyReport(progressOf(status), report, generation)
}

// appendRound records a closed round in the bounded history.
func appendRound(rounds []sednav1.LearningRound, result sednav1.LearningRound) []sednav1.LearningRound {
	return staged.AppendRound(rounds, result)
}

// setConditions sets Ready (the inference worker) and Training (where the round is).
func setConditions(job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus, block *blocker, inference *appsv1.Deployment) {
	ready := metav1.Condition{Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: job.Generation}
	switch {
	case block != nil:
		ready.Reason, ready.Message = block.Reason, block.Message
	case workers.DeploymentAvailable(inference):
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, reasonWorkerAvailable, "the inference worker is available"
	default:
		ready.Reason = reasonWorkerUnavailable
		ready.Message = fmt.Sprintf("deployment %s has no available replica", inferenceDeploymentName(job))
	}
	meta.SetStatusCondition(&status.Conditions, ready)

	training := staged.TrainingCondition(&status.LearningProgress, job.Generation)
	meta.SetStatusCondition(&status.Conditions, training)
	// Conditions that did not change keep their generation; bring them all to this one.
	for i := range status.Conditions {
		status.Conditions[i].ObservedGeneration = job.Generation
	}
}

func inferenceDeploymentName(job *sednav1.IncrementalLearningJob) string {
	return job.Name + "-deployment-" + inferenceWorkerType
}

// recordTransitions turns status changes into events, once per change rather than per sync.
func (c *Controller) recordTransitions(job *sednav1.IncrementalLearningJob, old, updated *sednav1.ILJobStatus) {
	staged.RecordTransitions(c.recorder, job, progressOf(old), progressOf(updated), reasonDatasetNotFound, reasonModelNotFound,
		reasonCredentialNotFound, reasonInvalidCredential, reasonInvalidSpec, reasonWorkerTokenConflict)
}
