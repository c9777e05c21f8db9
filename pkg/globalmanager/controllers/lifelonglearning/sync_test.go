package lifelonglearning

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func TestFirstSyncPublishesAndWaitsForTheTrainTrigger(t *testing.T) {
	job := atcii()
	job.Spec.CredentialName = "s3-creds"
	f := newFixture(t, "", job, dataset())
	f.sync()

	published, nodes := f.published()
	require.Equal(t, []string{"edge-1"}, nodes)
	require.Equal(t, "LifelongLearningJob", published.Kind)
	require.NotEmpty(t, published.Annotations[workerauth.TokenHashAnnotation], "the LC can check worker tokens")
	require.Equal(t, []string{"edge-1"}, f.secrets.Nodes(runtimeSecretKey("s3-creds")))

	status := f.job().Status
	require.Equal(t, sednav1.StageTrain, status.Stage)
	require.Equal(t, sednav1.StageWaiting, status.StageState)
	require.Nil(t, status.KnowledgeBase)
	ready := meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady)
	require.Equal(t, reasonNotDeployedYet, ready.Reason)
	training := meta.FindStatusCondition(status.Conditions, sednav1.ConditionTraining)
	require.Equal(t, staged.ReasonWaitingForTrigger, training.Reason)
	_, exists := f.deployment("atcii-deployment-inference")
	require.False(t, exists, "upstream starts the inference worker on the first deploy, when there is an index to serve")
}

func TestMissingDatasetBlocksAndSaysSo(t *testing.T) {
	f := newFixture(t, "", atcii())
	f.sync()
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.Equal(t, reasonDatasetNotFound, ready.Reason)
	require.Contains(t, ready.Message, `dataset "atcii-ds" not found`)
}

// A whole round driven by LC reports: the stage pods carry upstream's env, the train output
// becomes status.knowledgeBase, the deploy starts the inference worker, and the next round's
// train worker is told the cloud KB index.
func TestRoundCreatesStagePodsWithUpstreamsEnvAndFillsTheKnowledgeBase(t *testing.T) {
	f := newFixture(t, "kb-token", atcii(), dataset())
	f.sync()

	f.report(trainReady(1))
	f.sync()
	train := f.pod("atcii-train-1")
	require.Equal(t, "train", train.Labels["lifelonglearningjob.sedna.io/worker-type"])
	require.Equal(t, "1", train.Labels["lifelonglearningjob.sedna.io/round"])
	require.Equal(t, corev1.RestartPolicyNever, train.Spec.RestartPolicy)
	require.Equal(t, "edge-1", train.Spec.NodeName, "placement stays the template's")
	env := envOf(train.Spec.Containers[0])
	require.Equal(t, "mlogloss", env["metric_name"].Value, "the user's env is kept")
	require.Equal(t, "ns", env["NAMESPACE"].Value)
	require.Equal(t, "atcii", env["JOB_NAME"].Value)
	require.Equal(t, "metadata.name", env["WORKER_NAME"].ValueFrom.FieldRef.FieldPath)
	require.Equal(t, "http://$(SEDNA_HOST_IP):9100", env["LC_SERVER"].Value)
	require.Equal(t, testKB, env["KB_SERVER"].Value)
	require.Equal(t, "false", env["HAS_COMPLETED_INITIAL_TRAINING"].Value)
	require.NotContains(t, env, "CLOUD_KB_INDEX", "upstream sets it only after the initial training")
	require.Equal(t, "/home/data/output/train/1/", env["OUTPUT_URL"].Value)
	require.Equal(t, "/home/data/output/data/train/1/data.csv", env["TRAIN_DATASET_URL"].Value)
	require.Equal(t, "/home/data/data/trainData.csv", env["ORIGINAL_DATASET_URL"].Value)
	require.Equal(t, "atcii-lifelonglearningjob-worker-token", env[workerauth.TokenEnv].ValueFrom.SecretKeyRef.Name)
	kbToken := env[EnvKBToken].ValueFrom.SecretKeyRef
	require.Equal(t, "kb-token", kbToken.Name)
	require.Equal(t, KBTokenKey, kbToken.Key)
	require.True(t, *kbToken.Optional)
	require.Equal(t, sednav1.StageStarting, f.job().Status.StageState)

	f.setPodPhase("atcii-train-1", corev1.PodRunning)
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState)

	f.report(map[string]any{"phase": "Train", "status": "Completed", "round": 1, "output": trainOutput()})
	f.sync()
	kb := f.job().Status.KnowledgeBase
	require.NotNil(t, kb)
	require.Equal(t, sednav1.KnowledgeBase{
		AIModels: sednav1.AIModels{NumberOfAIModels: 2, ListOfAIModels: []sednav1.AIModel{
			{ModelID: "task-0", AveragePrecision: 0.91, NumberOfTrainSamples: 120},
			{ModelID: "task-1", AveragePrecision: 0.84, NumberOfTrainSamples: 120},
		}},
		AIClasses: sednav1.AIClasses{NumberOfAIClasses: 3, ListOfAIClasses: []string{"cold", "comfortable", "hot"}},
		Samples:   sednav1.Samples{NumberOfLabeledUnseenSample: 120, NumberOfUnseenSample: 30},
	}, *kb)

	f.report(map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": map[string]any{
		"models": []map[string]any{{"format": "pkl", "url": kbIndex}}, "dataURL": "/output/data/eval/1/data.csv", "outputDir": "/output/eval/1",
	}})
	f.sync()
	eval := f.pod("atcii-eval-1")
	env = envOf(eval.Spec.Containers[0])
	require.Equal(t, kbIndex, env["MODEL_URLS"].Value, "the KB's link reaches the worker as it is: the library fetches it")
	require.Equal(t, "/home/data/output/eval/1/", env["OUTPUT_URL"].Value)
	require.Equal(t, "/home/data/output/data/eval/1/data.csv", env["TEST_DATASET_URL"].Value)
	require.Equal(t, "/home/data/data/trainData.csv", env["ORIGINAL_DATASET_URL"].Value)
	require.Equal(t, testKB, env["KB_SERVER"].Value)
	require.NotContains(t, env, "HAS_COMPLETED_INITIAL_TRAINING")

	f.report(map[string]any{"phase": "Eval", "status": "Completed", "round": 1})
	f.report(map[string]any{"phase": "Deploy", "status": "Completed", "round": 1,
		"roundResult": map[string]any{"round": 1, "stage": "Deploy", "model": kbIndex, "deployed": true}})
	f.sync()
	d, exists := f.deployment("atcii-deployment-inference")
	require.True(t, exists, "the first deployed round starts the inference worker")
	require.Equal(t, "1", d.Spec.Template.Annotations[staged.DeployedRoundAnnotation])
	env = envOf(d.Spec.Template.Spec.Containers[0])
	require.Equal(t, "/home/data/output/deploy/index.pkl", env["MODEL_URLS"].Value)
	require.Equal(t, "/home/data/output/", env["OUTPUT_URL"].Value)
	require.Equal(t, testKB, env["KB_SERVER"].Value)
	require.Equal(t, "inference", d.Spec.Template.Labels["lifelonglearningjob.sedna.io/worker-type"])
	require.Len(t, f.job().Status.Rounds, 1)
	require.NotNil(t, f.job().Status.KnowledgeBase, "a report without models leaves the knowledge base as it is")

	// Round 2 with an LC that names the last index in the train input.
	f.report(trainReady(2, map[string]any{"format": "pkl", "url": kbIndex}))
	f.sync()
	env = envOf(f.pod("atcii-train-2").Spec.Containers[0])
	require.Equal(t, "true", env["HAS_COMPLETED_INITIAL_TRAINING"].Value)
	require.Equal(t, kbIndex, env["CLOUD_KB_INDEX"].Value)
	f.noPod("atcii-train-1") // the earlier round's pods are removed
	f.noPod("atcii-eval-1")

	f.report(map[string]any{"phase": "Deploy", "status": "Completed", "round": 2,
		"roundResult": map[string]any{"round": 2, "stage": "Deploy", "model": kbIndex, "deployed": true}})
	f.sync()
	d, _ = f.deployment("atcii-deployment-inference")
	require.Equal(t, "2", d.Spec.Template.Annotations[staged.DeployedRoundAnnotation], "a new deploy rolls the worker")
}

// An LC that names no index in the train input (as upstream's): the index comes from the newest
// round that trained.
func TestCloudIndexFromTheRoundHistory(t *testing.T) {
	job := atcii()
	job.Status.Round = 1
	job.Status.Stage, job.Status.StageState = sednav1.StageDeploy, sednav1.StageCompleted
	job.Status.Rounds = []sednav1.LearningRound{{Round: 1, Stage: sednav1.StageDeploy, Model: kbIndex, Deployed: true}}
	f := newFixture(t, "", job, dataset())
	f.report(trainReady(2))
	f.sync()
	env := envOf(f.pod("atcii-train-2").Spec.Containers[0])
	require.Equal(t, "true", env["HAS_COMPLETED_INITIAL_TRAINING"].Value)
	require.Equal(t, kbIndex, env["CLOUD_KB_INDEX"].Value)
	require.NotContains(t, env, EnvKBToken, "no token Secret configured")
}

func TestLocationsOutsideTheJobAndItsKnowledgeBaseAreRefused(t *testing.T) {
	cases := map[string]struct {
		url, env string
	}{
		"another host":             {"http://evil.example:9020/knowledgebase/file/download?files=x", "MODEL_URLS"},
		"the KB but not its API":   {testKB + "/metrics?x=1", "MODEL_URLS"},
		"the KB with dot-dot":      {testKB + "/knowledgebase/../admin?x=1", "MODEL_URLS"},
		"a host path elsewhere":    {"/etc/shadow", "MODEL_URLS"},
		"KB link with user info":   {"http://u:p@kb.sedna:9020/knowledgebase/file/download?files=x", "MODEL_URLS"},
		"an output dir not in job": {"", "OUTPUT_URL"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "", atcii(), dataset())
			input := map[string]any{"models": []map[string]any{{"url": kbIndex}}, "dataURL": "/output/data/eval/1/data.csv", "outputDir": "/output/eval/1"}
			refused := tc.url
			if tc.env == "OUTPUT_URL" {
				refused = "/var/lib/kubelet/eval/1"
				input["outputDir"] = refused
			} else {
				input["models"] = []map[string]any{{"url": tc.url}}
			}
			f.report(map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": input})
			f.sync()
			f.noPod("atcii-eval-1")
			status := f.job().Status
			require.Equal(t, sednav1.StageFailed, status.StageState)
			failed := meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed)
			require.Equal(t, staged.ReasonURLRefused, failed.Reason)
			require.Contains(t, failed.Message, tc.env)
			require.Contains(t, failed.Message, refused)
		})
	}
}

func TestStagePodRetriesThenFails(t *testing.T) {
	f := newFixture(t, "", atcii(), dataset())
	f.report(trainReady(1))
	f.sync()
	for try := 1; try <= staged.MaxStageAttempts; try++ {
		name := "atcii-train-1"
		if try > 1 {
			name += "-" + itoa(int32(try))
		}
		f.setPodPhase(name, corev1.PodFailed)
		f.clock = f.clock.Add(staged.RetryBaseDelay << try)
		f.sync()
	}
	status := f.job().Status
	require.Equal(t, sednav1.StageFailed, status.StageState)
	require.Equal(t, staged.ReasonStagePodFailed, meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed).Reason)
}

func TestKnowledgeBaseStatusUsesUpstreamsKeys(t *testing.T) {
	out, err := json.Marshal(trainOutput())
	require.NoError(t, err)
	kb, err := knowledgeBaseOf(out)
	require.NoError(t, err)
	encoded, err := json.Marshal(kb)
	require.NoError(t, err)
	var shape map[string]map[string]any
	require.NoError(t, json.Unmarshal(encoded, &shape))
	require.Contains(t, shape, "AIModels")
	require.Contains(t, shape, "AIClasses")
	require.Contains(t, shape, "samples")
	require.EqualValues(t, 2, shape["AIModels"]["numberOfAIModels"])
	require.Contains(t, shape["AIModels"], "listOfAIModels")
	require.EqualValues(t, 3, shape["AIClasses"]["numberOfAIClasses"])
	require.EqualValues(t, 120, shape["samples"]["numberOfLabeledUnseenSample"])

	none, err := knowledgeBaseOf([]byte(`{"models":[]}`))
	require.NoError(t, err)
	require.Nil(t, none)
	deployed, err := knowledgeBaseOf([]byte(`{"models":[{"format":"pkl","url":"/output/deploy/index.pkl"}]}`))
	require.NoError(t, err)
	require.Nil(t, deployed, "the LC's Deploy report names only the index file: it must not empty the knowledge base")
	_, err = knowledgeBaseOf([]byte(`{"models":[{"url":"x","number_of_labeled_unseen_sample":-1}]}`))
	require.ErrorContains(t, err, "negative sample counts")
	_, err = knowledgeBaseOf([]byte(`{"models":"x"}`))
	require.ErrorContains(t, err, "reading the models of the stage output")
}

// A report whose models cannot be summarised keeps the last knowledge base and says why.
func TestBadKnowledgeBaseReportKeepsTheLastSummary(t *testing.T) {
	f := newFixture(t, "", atcii(), dataset())
	f.report(map[string]any{"phase": "Train", "status": "Completed", "round": 1, "output": trainOutput()})
	f.sync()
	require.NotNil(t, f.job().Status.KnowledgeBase)
	f.report(map[string]any{"phase": "Eval", "status": "Completed", "round": 1,
		"output": map[string]any{"models": []map[string]any{{"url": "x", "number_of_unseen_sample": -3}}}})
	f.sync()
	status := f.job().Status
	require.Equal(t, sednav1.StageEval, status.Stage)
	require.Equal(t, 2, status.KnowledgeBase.AIModels.NumberOfAIModels)
	var events []string
	for len(f.recorder.Events) > 0 {
		events = append(events, <-f.recorder.Events)
	}
	require.Contains(t, events, "Warning InvalidKnowledgeBase round 1, stage Eval: model \"x\": negative sample counts")
}

func TestDeletedJobIsWithdrawn(t *testing.T) {
	f := newFixture(t, "", atcii(), dataset())
	f.sync()
	require.NoError(t, f.sedna.SednaV1alpha1().LifelongLearningJobs("ns").Delete(t.Context(), "atcii", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.Empty(t, f.downstream.published)
}

func TestLocateUsesTheSharedCredentialLookup(t *testing.T) {
	f := newFixture(t, "", atcii(), dataset())
	ctx := context.Background()
	job := atcii()
	loc, block, err := f.c.locate(ctx, job, "/data/x", "s3-creds", "the job's credentialName")
	require.NoError(t, err)
	require.Nil(t, block)
	require.Equal(t, location{url: "/data/x"}, loc, "a host path needs no credentials")

	_, block, err = f.c.locate(ctx, job, "s3://b/x", "s3-creds", "the job's credentialName")
	require.NoError(t, err)
	require.Equal(t, reasonCredentialNotFound, block.Reason)

	f.kube.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver down")
	})
	_, _, err = f.c.locate(ctx, job, "s3://b/x", "s3-creds", "the job's credentialName")
	require.ErrorContains(t, err, "named by the job's credentialName", "the failed read names who uses the Secret")
}

// An eval report carries metrics but no sample counts: the counts the train report gave stay,
// and a task the train report did not count stays at 0.
func TestEvalReportKeepsTheTrainReportsSampleCounts(t *testing.T) {
	f := newFixture(t, "", atcii(), dataset())
	f.report(map[string]any{"phase": "Train", "status": "Completed", "round": 1, "output": trainOutput()})
	f.sync()
	f.report(map[string]any{"phase": "Eval", "status": "Completed", "round": 1,
		"output": map[string]any{"models": []map[string]any{{
			"format": "pkl", "url": kbIndex, "classes": []string{"cold", "comfortable", "hot"},
			"current_metric": map[string]map[string]float64{
				"task-0": {"precision_score": 0.93}, "task-2": {"precision_score": 0.7},
			},
		}}}})
	f.sync()
	kb := f.job().Status.KnowledgeBase
	require.NotNil(t, kb)
	require.Equal(t, sednav1.Samples{NumberOfLabeledUnseenSample: 120, NumberOfUnseenSample: 30}, kb.Samples)
	require.Equal(t, []sednav1.AIModel{
		{ModelID: "task-0", AveragePrecision: 0.93, NumberOfTrainSamples: 120},
		{ModelID: "task-2", AveragePrecision: 0.7, NumberOfTrainSamples: 0},
	}, kb.AIModels.ListOfAIModels)
}
