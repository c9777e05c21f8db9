package rounds

import (
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func TestPublishedEventOnlyForTheCurrentStageAndRound(t *testing.T) {
	trainReady := State{Stage: sednav1.StageTrain, StageState: sednav1.StageReady, Round: 2}
	published := func(stage sednav1.LearningStage, state sednav1.StageState, round int32) sednav1.LearningProgress {
		return sednav1.LearningProgress{Stage: stage, StageState: state, Round: round}
	}
	for _, tc := range []struct {
		published sednav1.LearningProgress
		current   State
		event     Event
		ok        bool
	}{
		{published(sednav1.StageTrain, sednav1.StageStarting, 2), trainReady, EventStagePodCreated, true},
		{published(sednav1.StageTrain, sednav1.StageRunning, 2), trainReady, EventStagePodStarted, true},
		{published(sednav1.StageTrain, sednav1.StageFailed, 2), trainReady, EventStageFailed, true},
		{published(sednav1.StageTrain, sednav1.StageStarting, 1), trainReady, "", false},
		{published(sednav1.StageEval, sednav1.StageStarting, 2), trainReady, "", false},
		{published(sednav1.StageTrain, sednav1.StageCompleted, 2), trainReady, "", false},
		{published(sednav1.StageTrain, sednav1.StageStarting, 0), InitialState, "", false},
		// Running already: a Starting published again is not allowed.
		{published(sednav1.StageTrain, sednav1.StageStarting, 2), State{Stage: sednav1.StageTrain, StageState: sednav1.StageRunning, Round: 2}, EventStagePodCreated, false},
	} {
		event, ok := PublishedEvent(tc.published, tc.current)
		require.Equal(t, tc.ok, ok, "%+v in %s", tc.published, tc.current)
		if tc.event != "" {
			require.Equal(t, tc.event, event)
		}
	}
}

func TestWorkerEventSaysWhyAReportMovesNothing(t *testing.T) {
	evalRunning := State{Stage: sednav1.StageEval, StageState: sednav1.StageRunning, Round: 3}
	for _, tc := range []struct {
		kind, status, worker string
		event                Event
		why                  string
	}{
		{"eval", "Completed", "job-eval-3", EventWorkerCompleted, ""},
		{"Eval", "failed", "job-eval-3-1", EventWorkerFailed, ""},
		{"eval", "running", "random-name", EventStagePodStarted, ""},
		{"eval", "completed", "job-eval-2", "", "the report is from round 2's pod"},
		{"train", "completed", "job-train-3", "", "the round is not in the Train stage"},
		{"inference", "running", "job-inference", "", "kind inference does not drive the round"},
		{"eval", "waiting", "job-eval-3", "", "status waiting moves nothing"},
	} {
		event, why := WorkerEvent("job", evalRunning, tc.kind, tc.status, tc.worker)
		require.Equal(t, tc.event, event, "%+v", tc)
		require.Equal(t, tc.why, why, "%+v", tc)
	}
}

func TestFailedAtOnceEndMessageAndAppendRound(t *testing.T) {
	completed := State{Stage: sednav1.StageTrain, StageState: sednav1.StageCompleted, Round: 1}
	failed := FailedAtOnce(completed)
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageFailed, Round: 1}, failed)
	require.Equal(t, InitialState, FailedAtOnce(InitialState), "a state that cannot fail stays")

	require.Equal(t, "round 1 failed in stage Train", EndMessage(failed, ""))
	require.Equal(t, "why", EndMessage(failed, "why"))
	require.Empty(t, EndMessage(State{Stage: sednav1.StageDeploy, StageState: sednav1.StageCompleted, Round: 1}, ""))

	var history []sednav1.LearningRound
	for round := int32(1); round <= sednav1.MaxRoundHistory+2; round++ {
		before := history
		history = AppendRound(history, sednav1.LearningRound{Round: round})
		require.Len(t, before, min(int(round)-1, sednav1.MaxRoundHistory), "the history passed in is not changed")
	}
	require.Len(t, history, sednav1.MaxRoundHistory)
	require.Equal(t, int32(3), history[0].Round, "the oldest rounds go")
	require.Equal(t, int32(sednav1.MaxRoundHistory+2), history[len(history)-1].Round)
}
