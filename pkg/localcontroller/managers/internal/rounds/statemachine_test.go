package rounds

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// expectedTransitions is the machine written out by hand, independently of the table, as
// "Stage/State + Event -> Stage/State".
var expectedTransitions = map[string]string{
	"Train/Waiting + TrainTriggerFired": "Train/Ready",

	"Train/Ready + StagePodCreated":    "Train/Starting",
	"Train/Ready + StagePodStarted":    "Train/Running",
	"Train/Starting + StagePodStarted": "Train/Running",
	"Train/Ready + WorkerCompleted":    "Train/Completed",
	"Train/Starting + WorkerCompleted": "Train/Completed",
	"Train/Running + WorkerCompleted":  "Train/Completed",
	"Train/Ready + WorkerFailed":       "Train/Ready",
	"Train/Starting + WorkerFailed":    "Train/Starting",
	"Train/Running + WorkerFailed":     "Train/Running",
	"Train/Ready + StageFailed":        "Train/Failed",
	"Train/Starting + StageFailed":     "Train/Failed",
	"Train/Running + StageFailed":      "Train/Failed",
	"Train/Completed + EvalPrepared":   "Eval/Ready",
	"Train/Completed + StageFailed":    "Train/Failed",

	"Eval/Ready + StagePodCreated":    "Eval/Starting",
	"Eval/Ready + StagePodStarted":    "Eval/Running",
	"Eval/Starting + StagePodStarted": "Eval/Running",
	"Eval/Ready + WorkerCompleted":    "Eval/Completed",
	"Eval/Starting + WorkerCompleted": "Eval/Completed",
	"Eval/Running + WorkerCompleted":  "Eval/Completed",
	"Eval/Ready + WorkerFailed":       "Eval/Ready",
	"Eval/Starting + WorkerFailed":    "Eval/Starting",
	"Eval/Running + WorkerFailed":     "Eval/Running",
	"Eval/Ready + StageFailed":        "Eval/Failed",
	"Eval/Starting + StageFailed":     "Eval/Failed",
	"Eval/Running + StageFailed":      "Eval/Failed",
	"Eval/Completed + EvalDone":       "Deploy/Waiting",
	"Eval/Completed + StageFailed":    "Eval/Failed",

	"Deploy/Waiting + DeployTriggerPassed":   "Deploy/Ready",
	"Deploy/Waiting + DeployTriggerRejected": "Train/Waiting",
	"Deploy/Ready + ModelDeployed":           "Deploy/Completed",
	"Deploy/Ready + DeployFailed":            "Deploy/Failed",
	"Deploy/Ready + StageFailed":             "Deploy/Failed",

	"Deploy/Completed + RoundEnded": "Train/Waiting",
	"Train/Failed + RoundEnded":     "Train/Waiting",
	"Eval/Failed + RoundEnded":      "Train/Waiting",
	"Deploy/Failed + RoundEnded":    "Train/Waiting",
}

func TestNextFollowsTheTable(t *testing.T) {
	for input, want := range expectedTransitions {
		t.Run(input, func(t *testing.T) {
			var stage, stageState, event string
			_, err := fmt.Sscanf(input, "%s + %s", &stage, &event)
			require.NoError(t, err)
			stage, stageState = splitPhase(t, stage)
			from := State{Stage: sednav1.LearningStage(stage), StageState: sednav1.StageState(stageState), Round: 4}

			got, err := Next(from, Event(event))
			require.NoError(t, err)
			require.Equal(t, want, string(got.Stage)+"/"+string(got.StageState))
			wantRound := int32(4)
			if Event(event) == EventTrainTriggerFired {
				wantRound = 5
			}
			require.Equal(t, wantRound, got.Round, "only TrainTriggerFired starts a round")
			require.True(t, Allowed(from, Event(event)))
		})
	}
}

func TestNextRejectsEveryPairNotInTheTable(t *testing.T) {
	rejected := 0
	for _, stage := range Stages {
		for _, stageState := range StageStates {
			for _, event := range Events {
				input := fmt.Sprintf("%s/%s + %s", stage, stageState, event)
				if _, ok := expectedTransitions[input]; ok {
					continue
				}
				from := State{Stage: stage, StageState: stageState, Round: 2}
				got, err := Next(from, event)
				require.Error(t, err, input)
				require.Contains(t, err.Error(), string(event), input)
				require.Contains(t, err.Error(), fmt.Sprintf("%s/%s", stage, stageState), input)
				require.Equal(t, from, got, "a rejected event leaves the state as it was")
				require.False(t, Allowed(from, event), input)
				rejected++
			}
		}
	}
	require.Equal(t, len(Stages)*len(StageStates)*len(Events)-len(expectedTransitions), rejected)
}

func TestTableHasNoRowBeyondTheExpectedOnes(t *testing.T) {
	rows := Table()
	require.Len(t, rows, len(expectedTransitions))
	for _, row := range rows {
		input := fmt.Sprintf("%s/%s + %s", row.From.Stage, row.From.StageState, row.Event)
		require.Equal(t, expectedTransitions[input], fmt.Sprintf("%s/%s", row.To.Stage, row.To.StageState), input)
	}
}

func TestAFullRoundAndTheNextOne(t *testing.T) {
	state := InitialState
	for _, event := range []Event{
		EventTrainTriggerFired, EventStagePodCreated, EventStagePodStarted, EventWorkerCompleted,
		EventEvalPrepared, EventWorkerCompleted, EventEvalDone, EventDeployTriggerPassed,
		EventModelDeployed, EventRoundEnded, EventTrainTriggerFired,
	} {
		next, err := Next(state, event)
		require.NoError(t, err, "%s + %s", state, event)
		state = next
	}
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageReady, Round: 2}, state)
}

func splitPhase(t *testing.T, text string) (string, string) {
	t.Helper()
	for i := range text {
		if text[i] == '/' {
			return text[:i], text[i+1:]
		}
	}
	t.Fatalf("%q is not Stage/State", text)
	return "", ""
}
