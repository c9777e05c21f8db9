package incrementallearning

import (
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func TestParseReport(t *testing.T) {
	tests := map[string]struct {
		content string
		stage   *stageReport
		worker  *workerReport
		err     string
	}{
		"stage report, upstream's lower case": {
			content: `{"phase":"train","status":"ready","round":2,"input":{"models":[{"format":"pb","url":"/m"}],"dataURL":"/d","outputDir":"/o"},"output":null}`,
			stage: &stageReport{Stage: sednav1.StageTrain, State: sednav1.StageReady, Round: 2,
				Input: &stageInput{Models: []modelRef{{Format: "pb", URL: "/m"}}, DataURL: "/d", OutputDir: "/o"}},
		},
		"closing report": {
			content: `{"phase":"Train","status":"Waiting","round":3,"output":null,"message":"m","roundResult":{"round":3,"deployed":true}}`,
			stage: &stageReport{Stage: sednav1.StageTrain, State: sednav1.StageWaiting, Round: 3, Message: "m",
				RoundResult: &sednav1.LearningRound{Round: 3, Deployed: true}},
		},
		"worker report": {
			content: `{"phase":"train","status":"completed","output":{"models":[],"ownerInfo":null},"worker":"w","round":1}`,
			worker:  &workerReport{Phase: "train", Status: "completed", Worker: "w", Round: 1},
		},
		"unknown phase":     {content: `{"phase":"inference","status":"ready"}`, err: `phase "inference" is not a stage`},
		"unknown status":    {content: `{"phase":"Eval","status":"running2"}`, err: `status "running2" is not a stage state`},
		"negative round":    {content: `{"phase":"Eval","status":"Ready","round":-1}`, err: "negative round"},
		"round result of 0": {content: `{"phase":"Train","status":"Waiting","roundResult":{"round":0}}`, err: "round result of round 0"},
		"not json":          {content: `{`, err: "decoding"},
		// Upstream LCs' forwarded reports carry no "worker": they read as stage reports, as upstream's GM reads them.
		"upstream forwarded": {content: `{"phase":"train","status":"completed","output":{"models":[]}}`,
			stage: &stageReport{Stage: sednav1.StageTrain, State: sednav1.StageCompleted, Output: []byte(`{"models":[]}`)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			stage, worker, err := parseReport([]byte(tc.content))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.worker, worker)
			require.Equal(t, tc.stage, stage)
		})
	}
}

func TestAppendRoundKeepsTheNewest(t *testing.T) {
	var rounds []sednav1.LearningRound
	for i := int32(1); i <= 12; i++ {
		rounds = appendRound(rounds, sednav1.LearningRound{Round: i})
	}
	require.Len(t, rounds, sednav1.MaxRoundHistory)
	require.Equal(t, int32(3), rounds[0].Round)
	require.Equal(t, int32(12), rounds[9].Round)
	rounds = appendRound(rounds, sednav1.LearningRound{Round: 12, Deployed: true})
	require.Len(t, rounds, sednav1.MaxRoundHistory)
	require.True(t, rounds[9].Deployed, "a repeated round replaces its record")
}

// FuzzParseReport: no LC report, however malformed, panics the parser, and whatever it accepts
// names a known stage and state.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"phase":"Train","status":"Ready","round":1,"input":{"models":[{"url":"/m"}]}}`))
	f.Add([]byte(`{"phase":"train","status":"completed","worker":"w","output":{"models":null}}`))
	f.Add([]byte(`{"phase":"Train","status":"Waiting","round":3,"roundResult":{"round":3}}`))
	f.Fuzz(func(t *testing.T, content []byte) {
		stage, worker, err := parseReport(content)
		if err != nil {
			return
		}
		if worker != nil {
			return
		}
		require.NotNil(t, stage)
		require.Contains(t, []sednav1.LearningStage{sednav1.StageTrain, sednav1.StageEval, sednav1.StageDeploy}, stage.Stage)
		require.NotZero(t, stateRank(stage.State)+map[sednav1.StageState]int{sednav1.StageWaiting: 1, sednav1.StageCompleted: 1, sednav1.StageFailed: 1}[stage.State])
		require.GreaterOrEqual(t, stage.Round, int32(0))
	})
}
