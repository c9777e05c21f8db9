package incrementallearning

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// conditionStalled is True while the LC reports that it cannot carry out its part of the
// current stage (contract C2), with the LC's reason and message.
const conditionStalled = "Stalled"

// Condition reasons.
const (
	// Stalled is False again once a stage report comes without a problem.
	reasonProgressing = "Progressing"
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
	// Training is False while the job waits for the train trigger.
	reasonWaitingForTrigger = "WaitingForTrainTrigger"
	// Failed: the stage's pod failed maxStageAttempts times (GM), or the LC failed the stage.
	reasonStagePodFailed = "StagePodFailed"
	reasonStageFailed    = "StageFailed"
	// Failed: a location in the LC's stage input lies outside what the job declares.
	reasonURLRefused = "URLRefused"
	// Failed: the stage's pod succeeded but no report came within reportGrace.
	reasonWorkerDidNotReport = "WorkerDidNotReport"
	// Failed is False again once a new round starts.
	reasonRoundStarted = "RoundStarted"
	// Deployed: whether the last finished round's model went to the inference worker, and why not.
	reasonModelDeployed = "ModelDeployed"
	reasonNotDeployed   = "NotDeployed"
)

// blocker is a problem in the job's references that keeps its workers from being built.
type blocker = runtime.Blocker

// stageData is status.stageData: upstream's condition data {"input":..,"output":..}.
type stageData struct {
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// stateRank orders the states GM itself sets within a stage: it only moves them forward.
func stateRank(state sednav1.StageState) int {
	switch state {
	case sednav1.StageReady:
		return 1
	case sednav1.StageStarting:
		return 2
	case sednav1.StageRunning:
		return 3
	}
	return 0
}

// advanceState moves the stage to state unless it already is further.
func advanceState(status *sednav1.ILJobStatus, state sednav1.StageState) {
	if stateRank(state) > stateRank(status.StageState) {
		status.StageState = state
	}
}

// applyReport writes one LC stage report into status. The LC drives the rounds, so its reports
// are taken in the order it sent them; GM only adds Starting, Running and Failed afterwards from
// the stage's pods.
func applyReport(status *sednav1.ILJobStatus, report stageReport, generation int64) error {
	sameStage := status.Stage == report.Stage && status.Round == report.Round
	newRound := report.Round > status.Round
	status.Stage, status.StageState, status.Round = report.Stage, report.State, report.Round

	var data stageData
	if sameStage && status.StageData != "" {
		_ = json.Unmarshal([]byte(status.StageData), &data) // an unreadable old value is replaced
	}
	if report.Input != nil {
		input, err := json.Marshal(report.Input)
		if err != nil {
			return fmt.Errorf("encoding the stage input: %w", err)
		}
		data.Input = input
	}
	if len(report.Output) > 0 {
		data.Output = report.Output
	}
	status.StageData = ""
	if len(data.Input) > 0 || len(data.Output) > 0 {
		encoded, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encoding the stage data: %w", err)
		}
		status.StageData = string(encoded)
	}

	setStalled(status, report.Problem, generation)
	if report.RoundResult != nil {
		status.Rounds = appendRound(status.Rounds, *report.RoundResult)
		setDeployedCondition(status, *report.RoundResult, generation)
	}
	switch {
	case report.State == sednav1.StageFailed:
		if !meta.IsStatusConditionTrue(status.Conditions, sednav1.ConditionFailed) {
			message := report.Message
			if message == "" {
				message = fmt.Sprintf("round %d: the LC failed the %s stage", report.Round, report.Stage)
			}
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue,
				ObservedGeneration: generation, Reason: reasonStageFailed, Message: message})
		}
	case newRound && meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed) != nil:
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: sednav1.ConditionFailed, Status: metav1.ConditionFalse,
			ObservedGeneration: generation, Reason: reasonRoundStarted, Message: fmt.Sprintf("round %d started", report.Round)})
	}
	return nil
}

// setStalled sets Stalled from a stage report: True with the LC's problem, False (once it was set)
// when a report comes without one.
func setStalled(status *sednav1.ILJobStatus, p *problem, generation int64) {
	if p != nil {
		message := p.Message
		if len(message) > maxConditionMessage {
			message = strings.ToValidUTF8(message[:maxConditionMessage], "")
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: conditionStalled, Status: metav1.ConditionTrue,
			ObservedGeneration: generation, Reason: p.Reason, Message: message})
		return
	}
	if meta.FindStatusCondition(status.Conditions, conditionStalled) != nil {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: conditionStalled, Status: metav1.ConditionFalse,
			ObservedGeneration: generation, Reason: reasonProgressing, Message: "the LC carries out the stage"})
	}
}

// maxConditionMessage bounds a message taken from a report (metav1.Condition allows 32768 bytes).
const maxConditionMessage = 4096

// setDeployedCondition says whether the round's model was deployed; when it was not, the LC's
// message says why (for example the deploy trigger's metric and threshold).
func setDeployedCondition(status *sednav1.ILJobStatus, round sednav1.LearningRound, generation int64) {
	c := metav1.Condition{Type: sednav1.ConditionDeployed, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: reasonModelDeployed, Message: fmt.Sprintf("round %d: the trained model was deployed", round.Round)}
	if round.Model != "" {
		c.Message = fmt.Sprintf("round %d: %s was deployed", round.Round, round.Model)
	}
	if !round.Deployed {
		c.Status, c.Reason = metav1.ConditionFalse, reasonNotDeployed
		c.Message = fmt.Sprintf("round %d: the trained model was not deployed", round.Round)
		if round.Message != "" {
			c.Message += ": " + round.Message
		}
	}
	meta.SetStatusCondition(&status.Conditions, c)
}

// appendRound records a closed round, replacing an earlier record of the same round (a report
// the LC sent twice), oldest first, keeping the newest MaxRoundHistory.
func appendRound(rounds []sednav1.LearningRound, result sednav1.LearningRound) []sednav1.LearningRound {
	rounds = slices.DeleteFunc(slices.Clone(rounds), func(r sednav1.LearningRound) bool { return r.Round == result.Round })
	rounds = append(rounds, result)
	slices.SortStableFunc(rounds, func(a, b sednav1.LearningRound) int { return int(a.Round - b.Round) })
	if extra := len(rounds) - sednav1.MaxRoundHistory; extra > 0 {
		rounds = rounds[extra:]
	}
	return rounds
}

// deploymentAvailable: at least one inference pod serves.
func deploymentAvailable(d *appsv1.Deployment) bool {
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

// setConditions sets Ready (the inference worker) and Training (where the round is).
func setConditions(job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus, block *blocker, inference *appsv1.Deployment) {
	ready := metav1.Condition{Type: sednav1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: job.Generation}
	switch {
	case block != nil:
		ready.Reason, ready.Message = block.Reason, block.Message
	case deploymentAvailable(inference):
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, reasonWorkerAvailable, "the inference worker is available"
	default:
		ready.Reason = reasonWorkerUnavailable
		ready.Message = fmt.Sprintf("deployment %s has no available replica", inferenceDeploymentName(job))
	}
	meta.SetStatusCondition(&status.Conditions, ready)

	training := metav1.Condition{Type: sednav1.ConditionTraining, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation,
		Reason:  string(status.Stage) + string(status.StageState),
		Message: fmt.Sprintf("round %d: stage %s is %s", status.Round, status.Stage, status.StageState)}
	if status.Stage == sednav1.StageTrain && status.StageState == sednav1.StageWaiting {
		training.Status, training.Reason = metav1.ConditionFalse, reasonWaitingForTrigger
		training.Message = "waiting for the train trigger"
		if status.Round > 0 {
			training.Message = fmt.Sprintf("round %d ended; waiting for the train trigger", status.Round)
		}
	}
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
	if old.Stage != updated.Stage || old.StageState != updated.StageState || old.Round != updated.Round {
		eventType := corev1.EventTypeNormal
		if updated.StageState == sednav1.StageFailed {
			eventType = corev1.EventTypeWarning
		}
		c.recorder.Eventf(job, eventType, "Stage"+string(updated.StageState), "round %d: stage %s is %s", updated.Round, updated.Stage, updated.StageState)
	}
	for _, r := range updated.Rounds {
		if !slices.ContainsFunc(old.Rounds, func(o sednav1.LearningRound) bool { return o.Round == r.Round }) && r.Round > 0 {
			message := fmt.Sprintf("round %d ended in stage %s, deployed: %t", r.Round, r.Stage, r.Deployed)
			if r.Message != "" {
				message += ": " + r.Message
			}
			c.recorder.Event(job, corev1.EventTypeNormal, "RoundEnded", message)
		}
	}
	failed := meta.FindStatusCondition(updated.Conditions, sednav1.ConditionFailed)
	if failed != nil && failed.Status == metav1.ConditionTrue && !meta.IsStatusConditionTrue(old.Conditions, sednav1.ConditionFailed) {
		c.recorder.Event(job, corev1.EventTypeWarning, failed.Reason, failed.Message)
	}
	oldStalled := meta.FindStatusCondition(old.Conditions, conditionStalled)
	if stalled := meta.FindStatusCondition(updated.Conditions, conditionStalled); stalled != nil && stalled.Status == metav1.ConditionTrue &&
		(oldStalled == nil || oldStalled.Status != metav1.ConditionTrue || oldStalled.Reason != stalled.Reason) {
		c.recorder.Event(job, corev1.EventTypeWarning, stalled.Reason, stalled.Message)
	}
	oldReady := meta.FindStatusCondition(old.Conditions, sednav1.ConditionReady)
	newReady := meta.FindStatusCondition(updated.Conditions, sednav1.ConditionReady)
	if newReady != nil && (oldReady == nil || oldReady.Reason != newReady.Reason) {
		eventType := corev1.EventTypeNormal
		switch newReady.Reason {
		case reasonDatasetNotFound, reasonModelNotFound, reasonCredentialNotFound, reasonInvalidCredential, reasonInvalidSpec,
			reasonWorkerTokenConflict:
			eventType = corev1.EventTypeWarning
		}
		c.recorder.Event(job, eventType, newReady.Reason, newReady.Message)
	}
}
