package incrementallearning

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/model"
)

const hotUpdateDir = "/var/lib/sedna/model-hot-update/default/incrementallearningjob/helmet-il"

func TestRoundTrainsEvaluatesAndHotUpdates(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	l.run()

	// 10 new samples: 8 for training (trainProb 0.8), 2 for evaluation; 8 > 3 fires the trigger.
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	ready := l.stageReports()[0]
	require.Equal(t, &StageInput{
		Models:    []ModelRef{{Format: "pb", URL: "/data/models/initial/model.pb"}},
		DataURL:   "/data/out/data/train/1/data.txt",
		OutputDir: "/data/out/train/1",
	}, ready.Input)
	require.Equal(t, 8, strings.Count(n.readFile(t, "/data/out/data/train/1/data.txt"), "\n"))
	require.DirExists(t, filepath.Join(n.rootfs, "/data/out/train/1"))

	n.writeFile(t, "/data/out/train/1/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/model.pb")))
	require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1"}, l.states())
	evalReady := l.stageReports()[2]
	require.Equal(t, &StageInput{
		Models: []ModelRef{
			{Format: "pb", URL: "/data/out/train/1/model.pb"},
			{Format: "pb", URL: "/data/models/deploy/model.pb"},
		},
		DataURL: "/data/out/data/eval/1/data.txt",
	}, evalReady.Input)
	require.Equal(t, 2, strings.Count(n.readFile(t, "/data/out/data/eval/1/data.txt"), "\n"))

	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	require.Equal(t, []string{
		"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1", "Eval/Completed#1", "Deploy/Waiting#1",
		"Deploy/Ready#1", "Deploy/Completed#1", "Train/Waiting#1",
	}, l.states())

	require.Equal(t, "trained-1", n.readFile(t, hotUpdateDir+"/model.pb"))
	var config struct {
		ModelConfig struct {
			ModelPath string `json:"model_path"`
		} `json:"model_config"`
	}
	require.NoError(t, json.Unmarshal([]byte(n.readFile(t, hotUpdateDir+"/model_config.json")), &config))
	require.Equal(t, "/model-hot-update/model.pb", config.ModelConfig.ModelPath)

	reports := l.stageReports()
	closing := reports[len(reports)-1]
	require.NotNil(t, closing.RoundResult)
	require.True(t, closing.RoundResult.Deployed)
	require.Equal(t, int32(1), closing.RoundResult.Round)
	require.Equal(t, sednav1.StageDeploy, closing.RoundResult.Stage)
	require.Equal(t, "/data/out/train/1/model.pb", closing.RoundResult.Model)
	require.Contains(t, closing.RoundResult.Metrics, sednav1.Metric{Key: "precision", Value: "[0.9]"})

	forwarded := l.forwardedReports()
	require.Len(t, forwarded, 2)
	require.Equal(t, "train", forwarded[0].Phase)
	require.Equal(t, "completed", forwarded[0].Status)
	require.Equal(t, int32(1), forwarded[0].Round)

	rec := l.savedRecord()
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting, Round: 1}, rec.State)
	require.Empty(t, rec.Pending)
	require.Equal(t, &ModelRef{Format: "pb", URL: "/data/out/train/1/model.pb"}, rec.Deployed)

	// The next round starts from the trained model and is evaluated against the deployed one.
	n.appendSamples(t, 10, 5)
	l.waitForState("Train/Ready#2")
	reports = l.stageReports()
	require.Equal(t, []ModelRef{{Format: "pb", URL: "/data/out/train/1/model.pb"}}, reports[len(reports)-1].Input.Models)
}

func TestDeployTriggerRejectionEndsTheRoundUndeployed(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/model.pb")))
	require.NoError(t, l.post(evalCompletedMessage(0.8, 0.82)))

	require.Equal(t, []string{
		"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1", "Eval/Completed#1", "Deploy/Waiting#1", "Train/Waiting#1",
	}, l.states())
	reports := l.stageReports()
	closing := reports[len(reports)-1]
	require.False(t, closing.RoundResult.Deployed)
	require.Contains(t, closing.Message, "precision_delta")
	require.Contains(t, closing.Message, "-0.02")
	require.Contains(t, closing.Message, "> 0.01")
	require.Equal(t, closing.Message, closing.RoundResult.Message)
	require.NoFileExists(t, filepath.Join(n.rootfs, hotUpdateDir, "model_config.json"))
	require.Nil(t, l.savedRecord().Deployed)
}

func TestRestartMidRoundResumesWithoutANewRound(t *testing.T) {
	n := newNode(t)
	first := startLC(t, n)
	first.setup(newJob(false))
	first.run()
	n.appendSamples(t, 0, 10)
	first.waitForState("Train/Ready#1")
	first.stop()

	// More data arrives while the LC is down; the round in flight must not be started again.
	n.appendSamples(t, 10, 10)
	second := startLC(t, n)
	second.replay()
	second.run()
	second.waitPasses(5)
	require.Empty(t, second.states(), "a resumed round is not reported again")
	rec := second.savedRecord()
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageReady, Round: 1}, rec.State)
	pools := second.savedPools()
	require.Equal(t, 20, pools.SeenSamples)
	require.Len(t, pools.TrainPool, 8, "new samples wait for the next round")

	n.writeFile(t, "/data/out/train/1/model.pb", "trained-1")
	require.NoError(t, second.post(trainCompletedMessage("/data/out/train/1/model.pb")))
	require.Equal(t, []string{"Train/Completed#1", "Eval/Ready#1"}, second.states())
	require.Equal(t, 4, strings.Count(n.readFile(t, "/data/out/data/eval/1/data.txt"), "\n"), "both eval versions")

	// Without hot update the trained model replaces the deploy model's file.
	require.NoError(t, second.post(evalCompletedMessage(0.9, 0.8)))
	second.waitForState("Train/Ready#2")
	require.Equal(t, "trained-1", n.readFile(t, "/data/models/deploy/model.pb"))
}

func TestReportsSavedBeforeTheyAreQueued(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	refuse := errors.New("outbox full")
	l.reporter.SetHook(func(context.Context, channel.Key, []byte) error { return refuse })
	l.setup(newJob(true))
	l.run()
	n.appendSamples(t, 0, 10)
	require.Eventually(t, func() bool {
		rec, ok := l.trySavedRecord()
		return ok && rec.State.StageState == sednav1.StageReady
	}, waitFor, testPeriodPoll)
	rec := l.savedRecord()
	require.Len(t, rec.Pending, 1, "the Train/Ready report waits in the record")
	require.Empty(t, l.reporter.Contents())

	l.reporter.SetHook(nil)
	l.waitForState("Train/Ready#1")
	require.Eventually(t, func() bool { return len(l.savedRecord().Pending) == 0 }, waitFor, testPeriodPoll)
	require.Equal(t, []string{"Train/Ready#1"}, l.states())
}

func TestStageFailedPublishedByGMEndsTheRound(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	job := newJob(true)
	l.setup(job)
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")

	// A stale status of another round changes nothing.
	job.Status.LearningProgress = sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageFailed, Round: 0}
	l.publish(job)
	require.Equal(t, []string{"Train/Ready#1"}, l.states())

	job.Status.LearningProgress = sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageRunning, Round: 1}
	l.publish(job)
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageRunning, Round: 1}, l.savedRecord().State)

	// A failed worker attempt does not end the stage: GM retries the pod.
	require.NoError(t, l.post(managers.WorkerMessage{Kind: "train", Status: "failed"}))
	require.Equal(t, sednav1.StageRunning, l.savedRecord().State.StageState)

	job.Status.LearningProgress = sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageFailed, Round: 1}
	l.publish(job)
	require.Equal(t, []string{"Train/Ready#1", "Train/Failed#1", "Train/Waiting#1"}, l.states())
	reports := l.stageReports()
	require.Contains(t, reports[len(reports)-1].RoundResult.Message, "GM reports the Train stage failed")

	// The next round has a new number.
	n.appendSamples(t, 10, 5)
	l.waitForState("Train/Ready#2")
}

func TestUnusableResultsFailTheStage(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/model.pb")))
	require.NoError(t, l.post(managers.WorkerMessage{Kind: "eval", Status: "completed", Results: []map[string]any{{"url": "x", "metrics": map[string]any{"precision": true}}}}))
	require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1", "Eval/Failed#1", "Train/Waiting#1"}, l.states())
	reports := l.stageReports()
	require.Contains(t, reports[len(reports)-1].Message, "want 2")
}

func TestWorkerMessagesThatDoNotDriveTheRound(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))

	err := l.m.HandleWorkerMessage(context.Background(), managers.WorkerMessage{Name: "w", Namespace: testNamespace, OwnerName: "other", OwnerKind: Kind, Kind: "train", Status: "completed"})
	require.ErrorIs(t, err, managers.ErrInvalidMessage)

	// A train report while waiting for data, and the inference worker's deploy report: forwarded only.
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/9/model.pb")))
	require.NoError(t, l.post(managers.WorkerMessage{Kind: "deploy", Status: "completed"}))
	require.Empty(t, l.states())
	require.Len(t, l.forwardedReports(), 2)
	require.Equal(t, InitialState, l.savedRecord().State)
}

func TestDeletingTheJobRemovesItsRecordAndHotUpdateDir(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	n.writeFile(t, hotUpdateDir+"/model.pb", "x")
	n.appendSamples(t, 0, 2)
	l.run()
	l.waitPasses(2)
	require.Equal(t, 2, l.savedPools().SeenSamples)
	l.m.ResourceDeleted(context.Background(), l.jobKey())
	_, found, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	require.NoError(t, err)
	require.False(t, found)
	_, found, err = l.st.GetBlob(PoolNamespace, testNamespace+"/"+testJob)
	require.NoError(t, err)
	require.False(t, found)
	require.NoDirExists(t, filepath.Join(n.rootfs, hotUpdateDir))
}

func TestSplitSamples(t *testing.T) {
	for name, tc := range map[string]struct {
		content, format string
		want            []string
	}{
		"txt":               {"a\nb\n", "txt", []string{"a", "b"}},
		"unterminated":      {"a\nb", "txt", []string{"a"}},
		"blank lines":       {"a\n\n  \nb\n", "txt", []string{"a", "b"}},
		"csv header":        {"path,label\na,1\n", "csv", []string{"a,1"}},
		"crlf":              {"a\r\nb\r\n", "TXT", []string{"a", "b"}},
		"empty":             {"", "txt", []string{}},
		"csv only a header": {"h\n", "csv", []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, splitSamples([]byte(tc.content), tc.format))
		})
	}
}

func TestDeployStats(t *testing.T) {
	stats, problem := deployStats([]map[string]any{
		{"metrics": map[string]any{"precision": []any{0.9, 0.7}, "recall": 0.5, "f1": []any{0.1}}},
		{"metrics": map[string]any{"precision": []any{0.8, 0.75}, "recall": 0.25}},
	})
	require.Empty(t, problem)
	require.InDeltaSlice(t, []float64{0.1, -0.05}, stats["precision_delta"], 1e-9)
	require.Equal(t, []float64{0.25}, stats["recall_delta"])
	require.Equal(t, []float64{0.9, 0.7}, stats["precision"])
	require.NotContains(t, stats, "f1_delta", "no delta without the old model's metric")

	for name, results := range map[string][]map[string]any{
		"one result":     {{"metrics": map[string]any{}}},
		"no metrics":     {{}, {"metrics": map[string]any{}}},
		"string element": {{"metrics": map[string]any{"p": []any{"x"}}}, {"metrics": map[string]any{}}},
	} {
		_, problem := deployStats(results)
		require.NotEmpty(t, problem, name)
	}
}

func FuzzDeployStats(f *testing.F) {
	f.Add([]byte(`[{"metrics":{"p":[0.9]}},{"metrics":{"p":[0.8]}}]`))
	f.Add([]byte(`[{"metrics":{"p":1}},{"metrics":{"p":[1,2]}}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var results []map[string]any
		if json.Unmarshal(raw, &results) != nil {
			return
		}
		stats, problem := deployStats(results)
		if problem == "" && stats == nil {
			t.Fatal("no problem and no stats")
		}
	})
}

// GM acknowledged Train/Ready and crashed before writing it: the status it publishes still shows
// no round, so the LC sends its last stage report again, and stops once GM's status catches up.
func TestALostStageReportIsSentAgainWhileGMLags(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.m.opts.ResendAfter = 50 * time.Millisecond
	job := newJob(true)
	l.setup(job)
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	require.Eventually(t, func() bool { return slices.Equal(l.states(), []string{"Train/Ready#1", "Train/Ready#1"}) },
		waitFor, testPeriodPoll, "the report was not sent again: %v", l.states())

	synced := job.DeepCopy()
	synced.Status.Stage, synced.Status.StageState, synced.Status.Round = sednav1.StageTrain, sednav1.StageReady, 1
	l.publish(synced)
	sent := len(l.states())
	time.Sleep(200 * time.Millisecond) // four resend periods
	l.waitPasses(3)
	require.Len(t, l.states(), sent, "sent again although GM's status caught up: %v", l.states())
}

func TestGMLags(t *testing.T) {
	status := func(stage sednav1.LearningStage, state sednav1.StageState, round int32) sednav1.ILJobStatus {
		return sednav1.ILJobStatus{LearningProgress: sednav1.LearningProgress{Stage: stage, StageState: state, Round: round}}
	}
	lc := func(stage sednav1.LearningStage, state sednav1.StageState, round int32) State {
		return State{Stage: stage, StageState: state, Round: round}
	}
	for _, tc := range []struct {
		published sednav1.ILJobStatus
		lc        State
		lags      bool
	}{
		{status("", "", 0), lc(sednav1.StageTrain, sednav1.StageWaiting, 0), false},
		{status("", "", 0), lc(sednav1.StageTrain, sednav1.StageReady, 1), true},
		{status(sednav1.StageTrain, sednav1.StageWaiting, 1), lc(sednav1.StageTrain, sednav1.StageReady, 2), true},
		{status(sednav1.StageTrain, sednav1.StageReady, 1), lc(sednav1.StageTrain, sednav1.StageReady, 1), false},
		{status(sednav1.StageTrain, sednav1.StageRunning, 1), lc(sednav1.StageTrain, sednav1.StageRunning, 1), false},
		{status(sednav1.StageTrain, sednav1.StageRunning, 1), lc(sednav1.StageEval, sednav1.StageReady, 1), true},
		{status(sednav1.StageEval, sednav1.StageRunning, 1), lc(sednav1.StageEval, sednav1.StageReady, 1), false},
		{status(sednav1.StageDeploy, sednav1.StageCompleted, 1), lc(sednav1.StageTrain, sednav1.StageWaiting, 1), true},
		{status(sednav1.StageTrain, sednav1.StageWaiting, 1), lc(sednav1.StageTrain, sednav1.StageWaiting, 1), false},
		{status(sednav1.StageTrain, sednav1.StageReady, 3), lc(sednav1.StageTrain, sednav1.StageReady, 2), false},
	} {
		require.Equal(t, tc.lags, gmLags(tc.published, tc.lc), "published %+v, LC %s", tc.published, tc.lc)
	}
}

// An LC without a saved record for a job GM has run for 7 rounds (a wiped store, a Dataset moved
// here) continues the count, so round numbers and stage pod names are not reused.
func TestAFreshLCContinuesGMsRoundCount(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	job := newJob(true)
	job.Status.Stage, job.Status.StageState, job.Status.Round = sednav1.StageTrain, sednav1.StageWaiting, 7
	l.setup(job)
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#8")
	require.Equal(t, []string{"Train/Ready#8"}, l.states())
}

// Upstream's TensorFlow backend reports the exported model and the checkpoint directory. With a
// checkpoint initial model and a .pb deploy model (upstream's helmet example), the next round
// starts from the checkpoint, while the .pb is what is evaluated and deployed.
func TestTheTrainedModelIsPickedByFormatForEachUse(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	r := l.put(model.Kind, "initial", sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: "initial", Namespace: testNamespace},
		Spec: sednav1.ModelSpec{URL: "/data/models/initial/ckpt", Format: "ckpt"}})
	l.models.ResourceChanged(context.Background(), r)
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")

	n.writeFile(t, "/data/out/train/1/model.pb", "exported-1")
	n.writeFile(t, "/data/out/train/1/ckpt/checkpoint", "weights-1")
	require.NoError(t, l.post(managers.WorkerMessage{Kind: "train", Status: "completed", Results: []map[string]any{
		{"format": "pb", "url": "/data/out/train/1/model.pb"},
		{"format": "ckpt", "url": "/data/out/train/1/ckpt"},
	}}))
	evalReady := l.stageReports()[2]
	require.Equal(t, []ModelRef{{Format: "pb", URL: "/data/out/train/1/model.pb"}, {Format: "pb", URL: "/data/models/deploy/model.pb"}},
		evalReady.Input.Models, "the .pb is compared with the .pb deploy model")

	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	l.waitForState("Train/Waiting#1")
	require.Equal(t, "exported-1", n.readFile(t, hotUpdateDir+"/model.pb"), "the .pb is deployed")
	rec := l.savedRecord()
	require.Equal(t, &ModelRef{Format: "ckpt", URL: "/data/out/train/1/ckpt"}, rec.LastTrained, "the next round starts from the checkpoint")
	require.Equal(t, &ModelRef{Format: "pb", URL: "/data/out/train/1/model.pb"}, rec.Deployed)
}
