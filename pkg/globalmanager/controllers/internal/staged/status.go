package staged

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sedruntime "github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// ConditionStalled is True while the LC reports that it cannot carry out its part of the current
// stage (contract C2), with the LC's reason and message.
const ConditionStalled = "Stalled"

// Condition reasons both learning controllers set.
const (
	// Stalled is False again once a stage report comes without a problem.
	ReasonProgressing = "Progressing"
	// Training is False while the job waits for the train trigger.
	ReasonWaitingForTrigger = "WaitingForTrainTrigger"
	// Failed: the stage's pod failed MaxStageAttempts times (GM), or the LC failed the stage.
	ReasonStagePodFailed = "StagePodFailed"
	ReasonStageFailed    = "StageFailed"
	// Failed: a location in the LC's stage input lies outside what the job declares.
	ReasonURLRefused = "URLRefused"
	// Failed: the stage's pod succeeded but no report came within the report grace.
	ReasonWorkerDidNotReport = "WorkerDidNotReport"
	// Failed is False again once a new round starts.
	ReasonRoundStarted = "RoundStarted"
	// Deployed: whether the last finished round's model went to the inference worker, and why not.
	ReasonModelDeployed = "ModelDeployed"
	ReasonNotDeployed   = "NotDeployed"
)

// MaxConditionMessage bounds a message taken from a report (metav1.Condition allows 32768 bytes).
const MaxConditionMessage = 4096

// Status is the part of a learning job's status this package writes: the stage, round and round
// history, and the conditions.
type Status struct {
	*sednav1.LearningProgress
	Conditions *[]metav1.Condition
}

// Blocker is a problem in the job's references that keeps its workers from being built.
type Blocker = sedruntime.Blocker

// StageData is status.stageData: upstream's condition data {"input":..,"output":..}.
type StageData struct {
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// StateRank orders the states GM itself sets within a stage: it only moves them forward.
func StateRank(state sednav1.StageState) int {
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

// AdvanceState moves the stage to state unless it already is further.
func AdvanceState(status *sednav1.LearningProgress, state sednav1.StageState) {
	if StateRank(state) > StateRank(status.StageState) {
		status.StageState = state
	}
}

// ApplyReport writes one LC stage report into status. The LC drives the rounds, so its reports
// are taken in the order it sent them; GM only adds Starting, Running and Failed afterwards from
// the stage's pods.
func ApplyReport(status Status, report StageReport, generation int64) error {
	sameStage := status.Stage == report.Stage && status.Round == report.Round
	newRound := report.Round > status.Round
	status.Stage, status.StageState, status.Round = report.Stage, report.State, report.Round

	var data StageData
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

	SetStalled(status.Conditions, report.Problem, generation)
	if report.RoundResult != nil {
		status.Rounds = AppendRound(status.Rounds, *report.RoundResult)
		SetDeployedCondition(status.Conditions, *report.RoundResult, generation)
	}
	switch {
	case report.State == sednav1.StageFailed:
		if !meta.IsStatusConditionTrue(*status.Conditions, sednav1.ConditionFailed) {
			message := report.Message
			if message == "" {
				message = fmt.Sprintf("round %d: the LC failed the %s stage", report.Round, report.Stage)
			}
			meta.SetStatusCondition(status.Conditions, metav1.Condition{Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue,
				ObservedGeneration: generation, Reason: ReasonStageFailed, Message: message})
		}
	case newRound && meta.FindStatusCondition(*status.Conditions, sednav1.ConditionFailed) != nil:
		meta.SetStatusCondition(status.Conditions, metav1.Condition{Type: sednav1.ConditionFailed, Status: metav1.ConditionFalse,
			ObservedGeneration: generation, Reason: ReasonRoundStarted, Message: fmt.Sprintf("round %d started", report.Round)})
	}
	return nil
}

// SetStalled sets Stalled from a stage report: True with the LC's problem, False (once it was set)
// when a report comes without one.
func SetStalled(conditions *[]metav1.Condition, p *Problem, generation int64) {
	if p != nil {
		message := p.Message
		if len(message) > MaxConditionMessage {
			message = strings.ToValidUTF8(message[:MaxConditionMessage], "")
		}
		meta.SetStatusCondition(conditions, metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionTrue,
			ObservedGeneration: generation, Reason: p.Reason, Message: message})
		return
	}
	if meta.FindStatusCondition(*conditions, ConditionStalled) != nil {
		meta.SetStatusCondition(conditions, metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionFalse,
			ObservedGeneration: generation, Reason: ReasonProgressing, Message: "the LC carries out the stage"})
	}
}

// SetDeployedCondition says whether the round's model was deployed; when it was not, the LC's
// message says why (for example the deploy trigger's metric and threshold).
func SetDeployedCondition(conditions *[]metav1.Condition, round sednav1.LearningRound, generation int64) {
	c := metav1.Condition{Type: sednav1.ConditionDeployed, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: ReasonModelDeployed, Message: fmt.Sprintf("round %d: the trained model was deployed", round.Round)}
	if round.Model != "" {
		c.Message = fmt.Sprintf("round %d: %s was deployed", round.Round, round.Model)
	}
	if !round.Deployed {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNotDeployed
		c.Message = fmt.Sprintf("round %d: the trained model was not deployed", round.Round)
		if round.Message != "" {
			c.Message += ": " + round.Message
		}
	}
	meta.SetStatusCondition(conditions, c)
}

// AppendRound records a closed round, replacing an earlier record of the same round (a report
// the LC sent twice), oldest first, keeping the newest MaxRoundHistory.
func AppendRound(rounds []sednav1.LearningRound, result sednav1.LearningRound) []sednav1.LearningRound {
	rounds = slices.DeleteFunc(slices.Clone(rounds), func(r sednav1.LearningRound) bool { return r.Round == result.Round })
	rounds = append(rounds, result)
	slices.SortStableFunc(rounds, func(a, b sednav1.LearningRound) int { return int(a.Round - b.Round) })
	if extra := len(rounds) - sednav1.MaxRoundHistory; extra > 0 {
		rounds = rounds[extra:]
	}
	return rounds
}

// TrainingCondition is the Training condition of where the round is: False while the job waits
// for the train trigger.
func TrainingCondition(status *sednav1.LearningProgress, generation int64) metav1.Condition {
	training := metav1.Condition{Type: sednav1.ConditionTraining, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason:  string(status.Stage) + string(status.StageState),
		Message: fmt.Sprintf("round %d: stage %s is %s", status.Round, status.Stage, status.StageState)}
	if status.Stage == sednav1.StageTrain && status.StageState == sednav1.StageWaiting {
		training.Status, training.Reason = metav1.ConditionFalse, ReasonWaitingForTrigger
		training.Message = "waiting for the train trigger"
		if status.Round > 0 {
			training.Message = fmt.Sprintf("round %d ended; waiting for the train trigger", status.Round)
		}
	}
	return training
}

// StageInputOf reads the current stage's input from status.stageData.
func StageInputOf(status *sednav1.LearningProgress) (StageInput, error) {
	var data struct {
		Input *StageInput `json:"input"`
	}
	if status.StageData == "" {
		return StageInput{}, errors.New("the LC sent no stage input")
	}
	if err := json.Unmarshal([]byte(status.StageData), &data); err != nil {
		return StageInput{}, fmt.Errorf("reading the stage input: %w", err)
	}
	if data.Input == nil {
		return StageInput{}, errors.New("the LC sent no stage input")
	}
	return *data.Input, nil
}

// RecordTransitions turns status changes into events, once per change rather than per sync.
// A change of Ready to one of warningReady is a Warning.
func RecordTransitions(recorder record.EventRecorder, job runtime.Object, old, updated Status, warningReady ...string) {
	if old.Stage != updated.Stage || old.StageState != updated.StageState || old.Round != updated.Round {
		eventType := corev1.EventTypeNormal
		if updated.StageState == sednav1.StageFailed {
			eventType = corev1.EventTypeWarning
		}
		recorder.Eventf(job, eventType, "Stage"+string(updated.StageState), "round %d: stage %s is %s", updated.Round, updated.Stage, updated.StageState)
	}
	for _, r := range updated.Rounds {
		if !slices.ContainsFunc(old.Rounds, func(o sednav1.LearningRound) bool { return o.Round == r.Round }) && r.Round > 0 {
			message := fmt.Sprintf("round %d ended in stage %s, deployed: %t", r.Round, r.Stage, r.Deployed)
			if r.Message != "" {
				message += ": " + r.Message
			}
			recorder.Event(job, corev1.EventTypeNormal, "RoundEnded", message)
		}
	}
	failed := meta.FindStatusCondition(*updated.Conditions, sednav1.ConditionFailed)
	if failed != nil && failed.Status == metav1.ConditionTrue && !meta.IsStatusConditionTrue(*old.Conditions, sednav1.ConditionFailed) {
		recorder.Event(job, corev1.EventTypeWarning, failed.Reason, failed.Message)
	}
	oldStalled := meta.FindStatusCondition(*old.Conditions, ConditionStalled)
	if stalled := meta.FindStatusCondition(*updated.Conditions, ConditionStalled); stalled != nil && stalled.Status == metav1.ConditionTrue &&
		(oldStalled == nil || oldStalled.Status != metav1.ConditionTrue || oldStalled.Reason != stalled.Reason) {
		recorder.Event(job, corev1.EventTypeWarning, stalled.Reason, stalled.Message)
	}
	oldReady := meta.FindStatusCondition(*old.Conditions, sednav1.ConditionReady)
	newReady := meta.FindStatusCondition(*updated.Conditions, sednav1.ConditionReady)
	if newReady != nil && (oldReady == nil || oldReady.Reason != newReady.Reason) {
		eventType := corev1.EventTypeNormal
		if slices.Contains(warningReady, newReady.Reason) {
			eventType = corev1.EventTypeWarning
		}
		recorder.Event(job, eventType, newReady.Reason, newReady.Message)
	}
}
