package staged

import (
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func TestParseReportRefusesWhatIsNotAStage(t *testing.T) {
	_, _, err := ParseReport("lifelong learning", []byte(`{"phase":"Inference","status":"ready"}`))
	require.ErrorContains(t, err, `lifelong learning report: phase "Inference" is not a stage`)
	_, _, err = ParseReport("lifelong learning", []byte(`{"phase":"train","status":"done"}`))
	require.ErrorContains(t, err, `status "done" is not a stage state`)
	_, _, err = ParseReport("lifelong learning", []byte(`{"phase":"train","status":"ready","problem":{"reason":"no such"}}`))
	require.ErrorContains(t, err, "not a CamelCase word")

	stage, worker, err := ParseReport("lifelong learning", []byte(`{"phase":"train","status":"READY","round":2,"output":null}`))
	require.NoError(t, err)
	require.Nil(t, worker)
	require.Equal(t, sednav1.StageTrain, stage.Stage)
	require.Equal(t, sednav1.StageReady, stage.State)
	require.Nil(t, stage.Output, "a null output is no output")
}

func TestPendingKeepsOrderAndDropsTheOldest(t *testing.T) {
	var p Pending
	for i := range MaxPendingReports + 3 {
		dropped := p.Add("ns/a", StageReport{Round: int32(i)})
		if i < MaxPendingReports {
			require.Zero(t, dropped)
		} else {
			require.Equal(t, 1, dropped)
		}
	}
	got := p.Take("ns/a")
	require.Len(t, got, MaxPendingReports)
	require.EqualValues(t, 3, got[0].Round)
	p.Done("ns/a", 2)
	require.EqualValues(t, 5, p.Take("ns/a")[0].Round)
	p.Forget("ns/a")
	require.Empty(t, p.Take("ns/a"))
}

func TestApplyReportKeepsABoundedRoundHistory(t *testing.T) {
	var progress sednav1.LearningProgress
	var conditions []metav1.Condition
	st := Status{LearningProgress: &progress, Conditions: &conditions}
	for round := int32(1); round <= sednav1.MaxRoundHistory+2; round++ {
		require.NoError(t, ApplyReport(st, StageReport{Stage: sednav1.StageDeploy, State: sednav1.StageCompleted, Round: round,
			RoundResult: &sednav1.LearningRound{Round: round, Deployed: true}}, 1))
	}
	require.Len(t, progress.Rounds, sednav1.MaxRoundHistory)
	require.EqualValues(t, 3, progress.Rounds[0].Round)
	require.EqualValues(t, sednav1.MaxRoundHistory+2, progress.Round)
}

func TestStagePodNameIsLowerCase(t *testing.T) {
	require.Equal(t, "job-train-3", StagePodName("job", "Train", 3, 1))
	require.Equal(t, "job-eval-3-2", StagePodName("job", "Eval", 3, 2))
	require.Equal(t, "incrementallearningjob.sedna.io/round", RoundLabel("IncrementalLearningJob"))
}
