package rounds

import (
	"fmt"
	"slices"
	"strings"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// PublishedEvent is the event the status GM published brings for the LC's current stage and
// round: Starting (the stage pod was created), Running, or Failed (beyond its retries). ok is
// false for a status of another stage or round, before the first round, for any other stage
// state, and for an event current does not allow (an older status GM publishes again, or one the
// LC is already past).
func PublishedEvent(published sednav1.LearningProgress, current State) (event Event, ok bool) {
	if published.Round != current.Round || published.Stage != current.Stage || current.Round == 0 {
		return "", false
	}
	switch published.StageState {
	case sednav1.StageStarting:
		event = EventStagePodCreated
	case sednav1.StageRunning:
		event = EventStagePodStarted
	case sednav1.StageFailed:
		event = EventStageFailed
	default:
		return "", false
	}
	return event, Allowed(current, event)
}

// WorkerEvent maps a report of a job's worker to the event it brings in current: a train or eval
// worker's running, failed or completed for the stage the round is in, from this round's pod (or
// a pod whose name carries no round). Otherwise event is "" and why says why the report moves
// nothing. A completion's results are the manager's to check.
func WorkerEvent(jobName string, current State, kind, status, worker string) (event Event, why string) {
	var stage sednav1.LearningStage
	switch strings.ToLower(kind) {
	case "train":
		stage = sednav1.StageTrain
	case "eval":
		stage = sednav1.StageEval
	default:
		return "", "kind " + kind + " does not drive the round"
	}
	if current.Stage != stage {
		return "", "the round is not in the " + string(stage) + " stage"
	}
	if round, ok := PodRound(jobName, stage, worker); ok && round != current.Round {
		return "", fmt.Sprintf("the report is from round %d's pod", round)
	}
	switch strings.ToLower(status) {
	case "running":
		return EventStagePodStarted, ""
	case "failed":
		return EventWorkerFailed, ""
	case "completed":
		return EventWorkerCompleted, ""
	default:
		return "", "status " + status + " moves nothing"
	}
}

// FailedAtOnce is state after a completion whose results the LC cannot use: the stage that just
// completed fails at once (X/Completed + StageFailed). A state that cannot fail is returned as is.
func FailedAtOnce(state State) State {
	if failed, err := Next(state, EventStageFailed); err == nil {
		return failed
	}
	return state
}

// EndMessage is the message of a round that ends in state: message, or for a failed round
// without one, where it failed.
func EndMessage(state State, message string) string {
	if message == "" && state.StageState == sednav1.StageFailed {
		message = fmt.Sprintf("round %d failed in stage %s", state.Round, state.Stage)
	}
	return message
}

// AppendRound adds a finished round to history, keeping the newest sednav1.MaxRoundHistory. The
// history passed in is not changed.
func AppendRound(history []sednav1.LearningRound, round sednav1.LearningRound) []sednav1.LearningRound {
	history = append(slices.Clone(history), round)
	if extra := len(history) - sednav1.MaxRoundHistory; extra > 0 {
		history = history[extra:]
	}
	return history
}
