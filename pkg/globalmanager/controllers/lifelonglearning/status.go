package lifelonglearning

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Condition reasons of Ready; those of the stages and rounds are the shared ones (package staged).
const (
	reasonWorkerAvailable   = "WorkerAvailable"
	reasonWorkerUnavailable = "WorkerUnavailable"
	// reasonNotDeployedYet: no round was deployed yet, so there is no inference worker.
	reasonNotDeployedYet = "NotDeployedYet"
	// Ready, while the job's references keep its workers from being built.
	reasonDatasetNotFound     = "DatasetNotFound"
	reasonCredentialNotFound  = "CredentialNotFound"
	reasonInvalidCredential   = "InvalidCredential"
	reasonInvalidSpec         = "InvalidSpec"
	reasonWorkerTokenConflict = "WorkerTokenConflict"
	// reasonInvalidKnowledgeBase (an event): a report's models could not be summarised.
	reasonInvalidKnowledgeBase = "InvalidKnowledgeBase"
)

// warningReady are the Ready reasons that are recorded as Warning events.
var warningReady = []string{reasonDatasetNotFound, reasonCredentialNotFound, reasonInvalidCredential, reasonInvalidSpec,
	reasonWorkerTokenConflict}

// progressOf is the part of the status the shared stage machine writes.
func progressOf(status *sednav1.LLJobStatus) staged.Status {
	return staged.Status{LearningProgress: &status.LearningProgress, Conditions: &status.Conditions}
}

// setConditions sets Ready (the inference worker) and Training (where the round is).
func setConditions(job *sednav1.LifelongLearningJob, status *sednav1.LLJobStatus, block *staged.Blocker, inference *appsv1.Deployment) {
	ready := metav1.Condition{Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: job.Generation}
	switch {
	case block != nil:
		ready.Reason, ready.Message = block.Reason, block.Message
	case workers.DeploymentAvailable(inference):
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, reasonWorkerAvailable, "the inference worker is available"
	case inference == nil && staged.DeployedRound(&status.LearningProgress, nil) == 0:
		ready.Reason, ready.Message = reasonNotDeployedYet, "no round was deployed yet"
	default:
		ready.Reason = reasonWorkerUnavailable
		ready.Message = fmt.Sprintf("deployment %s has no available replica", inferenceDeploymentName(job))
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	meta.SetStatusCondition(&status.Conditions, staged.TrainingCondition(&status.LearningProgress, job.Generation))
	// Conditions that did not change keep their generation; bring them all to this one.
	for i := range status.Conditions {
		status.Conditions[i].ObservedGeneration = job.Generation
	}
}
