package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func llJob(round int32, tasks []string, rounds ...sednav1.LearningRound) *sednav1.LifelongLearningJob {
	j := &sednav1.LifelongLearningJob{}
	j.Status.Round, j.Status.Rounds = round, rounds
	j.Status.Stage, j.Status.StageState = sednav1.LearningStage("Train"), "Running"
	if tasks != nil {
		j.Status.KnowledgeBase = &sednav1.KnowledgeBase{}
		for _, t := range tasks {
			j.Status.KnowledgeBase.AIModels.ListOfAIModels = append(j.Status.KnowledgeBase.AIModels.ListOfAIModels, sednav1.AIModel{ModelID: t})
		}
		j.Status.KnowledgeBase.AIModels.NumberOfAIModels = len(tasks)
	}
	return j
}

func ended(round int32, deployed bool, message string) sednav1.LearningRound {
	now := metav1.Now()
	return sednav1.LearningRound{Round: round, Deployed: deployed, Message: message, CompletionTime: &now}
}

// The lifelong learning job is settled when no round is under way and it learned every task it
// was given, or the last round says why it did not, or a Failed condition says why the job
// cannot go on; a round under way, or a task missing with no reason, is not.
func TestLLVerdict(t *testing.T) {
	given := []string{"rotation-0", "rotation-90"}
	for _, tc := range []struct {
		name                 string
		job                  *sednav1.LifelongLearningJob
		kb                   []string
		settled, ok, learned bool
	}{
		{"nothing yet", llJob(0, nil), nil, false, false, false},
		{"round under way", llJob(2, []string{"rotation-0"}, ended(1, true, "")), nil, false, false, false},
		{"round 2 started, not ended", llJob(2, []string{"rotation-0"}, ended(1, true, ""), sednav1.LearningRound{Round: 2}), nil, false, false, false},
		{"learned", llJob(2, []string{"rotation-0", "rotation-90"}, ended(1, true, ""), ended(2, true, "")), nil, true, true, true},
		{"learned, the KB agrees", llJob(2, []string{"rotation-0", "rotation-90"}, ended(2, true, "")), []string{"rotation-0", "rotation-90"}, true, true, true},
		{"status says learned, the KB lost one", llJob(2, []string{"rotation-0", "rotation-90"}, ended(2, true, "")), []string{"rotation-0"}, false, false, false},
		{"missing, no round since", llJob(1, []string{"rotation-0"}, ended(1, true, "")), nil, false, false, false},
		{"missing, the last round says why", llJob(2, []string{"rotation-0"}, ended(1, true, ""), ended(2, false, "train failed: the knowledge base refused the upload")), nil, true, true, false},
		{"missing, the last round ended without a word", llJob(2, []string{"rotation-0"}, ended(2, false, "")), nil, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := llVerdictOf(tc.job, given, tc.kb)
			require.Equal(t, tc.settled, v.settled, v.what)
			require.Equal(t, tc.ok, v.ok, v.what)
			require.Equal(t, tc.learned, v.learned, v.what)
			require.NotEmpty(t, v.what)
		})
	}
	failed := llJob(2, []string{"rotation-0"}, ended(1, true, ""))
	failed.Status.Conditions = []metav1.Condition{{Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, Message: "the dataset is gone"}}
	v := llVerdictOf(failed, given, nil)
	require.True(t, v.settled && v.ok && v.failed, v.what)
	require.Contains(t, v.what, "the dataset is gone")
}

// What the knowledge base listed at any read must still be there with the same model bytes;
// tasks added since are fine.
func TestKBLost(t *testing.T) {
	seen := map[string]string{"rotation-0": "a", "rotation-90": "b"}
	require.Empty(t, kbLost(seen, map[string]string{"rotation-0": "a", "rotation-90": "b", "rotation-45": "c"}))
	require.Equal(t, []string{"rotation-0 model changed", "rotation-90 lost"}, kbLost(seen, map[string]string{"rotation-0": "x"}))
	require.Empty(t, kbLost(map[string]string{}, map[string]string{}))
}

// Rounds count as ended under faults when they completed between the injection's start and its
// end, to the second status keeps.
func TestRoundsBetween(t *testing.T) {
	from := time.Date(2026, 12, 5, 22, 0, 0, 500_000_000, time.UTC)
	to := from.Add(time.Minute)
	at := func(round int32, deployed bool, when time.Time) sednav1.LearningRound {
		t := metav1.NewTime(when.Truncate(time.Second))
		return sednav1.LearningRound{Round: round, Deployed: deployed, CompletionTime: &t}
	}
	rounds := []sednav1.LearningRound{
		at(1, true, from.Add(-2*time.Second)), // before
		at(2, true, from),                     // the same second as the start
		at(3, false, from.Add(30*time.Second)),
		at(4, true, to.Add(5*time.Second)), // after
		{Round: 5},                         // under way
	}
	ended, deployed := roundsBetween(rounds, from, to)
	require.Equal(t, 2, ended)
	require.Equal(t, 1, deployed)
}

// A Deployment's pods are told apart per template revision, so a rollout's two pods are not
// counted as duplicates; pods of one revision are.
func TestPodWorkerOf(t *testing.T) {
	labels := map[string]string{"lifelonglearningjob.sedna.io/name": "mnist-ll", "lifelonglearningjob.sedna.io/worker-type": "inference"}
	require.Equal(t, "lifelonglearningjob/mnist-ll/inference", podWorkerOf(labels))
	labels["pod-template-hash"] = "5c7d"
	require.Equal(t, "lifelonglearningjob/mnist-ll/inference@5c7d", podWorkerOf(labels))
	require.Empty(t, podWorkerOf(map[string]string{"pod-template-hash": "5c7d"}))
}

func TestResultLine(t *testing.T) {
	var v struct{ Rows int }
	require.NoError(t, resultLine([]byte("loading\nRESULT {\"Rows\":3}\n"), &v))
	require.Equal(t, 3, v.Rows)
	require.ErrorContains(t, resultLine([]byte("mnist-ll-drive: refused\n"), &v), "no RESULT line: mnist-ll-drive: refused")
}

// TestNextFromStaysInItsWindow: the campaign's 100-fault run burnt through the training set
// (a stream from image 568,000 of 60,000) after a run of failed streams; a stream's images now
// cycle within its rotation's window.
func TestNextFromStaysInItsWindow(t *testing.T) {
	from := 40000
	seen := map[int]bool{}
	for range 25 {
		require.GreaterOrEqual(t, from, 40000)
		require.LessOrEqual(t, from+llStreamImages, 40000+llWindow)
		require.LessOrEqual(t, from+llStreamImages, 60000)
		seen[from] = true
		from = nextFrom(from, 40000)
	}
	require.Len(t, seen, llWindow/llStreamImages, "every slot of the window is used")
	require.Equal(t, 22000, nextFrom(20000, 20000))
	require.Equal(t, 20000, nextFrom(38000, 20000))
}
