package incrementallearning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func TestFirstSyncPublishesToTheDatasetsNodeAndStartsTheInferenceWorker(t *testing.T) {
	job := helmet()
	job.Spec.CredentialName = "s3-creds"
	job.Spec.EvalSpec.InitialEvalModel = &sednav1.ModelReference{Name: "eval-model"}
	f := newFixture(t, append(objects(job), model("eval-model", "/models/eval/model.pb")))
	f.sync()

	published, nodes := f.published()
	require.Equal(t, []string{"edge-1"}, nodes)
	require.Equal(t, "IncrementalLearningJob", published.Kind)
	require.NotContains(t, published.Annotations, HotUpdateAnnotation, "no hot update asked for")
	for _, name := range []string{"initial-model", "deploy-model", "eval-model"} {
		require.Equal(t, []string{"edge-1"}, f.models.Nodes(runtime.Key("model", "ns", name)), name)
	}
	require.Equal(t, []string{"edge-1"}, f.secrets.Nodes(runtime.Key(runtime.SecretKind, "ns", "s3-creds")))

	status := f.job().Status
	require.Equal(t, sednav1.StageTrain, status.Stage)
	require.Equal(t, sednav1.StageWaiting, status.StageState)
	require.Equal(t, int32(0), status.Round)
	require.Equal(t, int64(1), status.ObservedGeneration)
	require.NotNil(t, status.StartTime)
	training := meta.FindStatusCondition(status.Conditions, sednav1.ConditionTraining)
	require.Equal(t, metav1.ConditionFalse, training.Status)
	require.Equal(t, reasonWaitingForTrigger, training.Reason)
	ready := meta.FindStatusCondition(status.Conditions, sednav1.ConditionReady)
	require.Equal(t, reasonWorkerUnavailable, ready.Reason)
	require.Equal(t, int64(1), ready.ObservedGeneration)

	d := f.deployment("helmet-deployment-inference")
	require.Equal(t, ptr.To[int32](1), d.Spec.Replicas)
	require.Equal(t, "inference", d.Spec.Template.Labels["incrementallearningjob.sedna.io/worker-type"])
	env := envOf(d.Spec.Template.Spec.Containers[0])
	require.Equal(t, "/home/data/models/deploy/model.pb", env["MODEL_URL"].Value)
	require.Equal(t, "IBT", env["HEM_NAME"].Value)
	require.Equal(t, `[{"key":"threshold_img","value":"0.9"}]`, env["HEM_PARAMETERS"].Value)
	require.Equal(t, "http://$(SEDNA_HOST_IP):9100", env["LC_SERVER"].Value)
	require.NotContains(t, env, "MODEL_HOT_UPDATE")
	require.False(t, d.Spec.Template.Spec.HostNetwork)

	f.sync()
	for _, a := range f.kube.Actions() {
		require.NotContains(t, []string{"create", "update", "delete"}, a.GetVerb(), "second sync writes nothing: %v", a)
	}
	for _, a := range f.sedna.Actions() {
		require.NotEqual(t, "update", a.GetVerb(), "status unchanged: no write")
	}
}

func TestWithoutADatasetNothingIsPublishedAndTheJobIsBlocked(t *testing.T) {
	f := newFixture(t, objects(helmet())[:1])
	f.sync()
	_, nodes := f.published()
	require.Empty(t, nodes)
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.Equal(t, reasonDatasetNotFound, ready.Reason)
	require.Empty(t, f.podWrites())
	require.Contains(t, f.events(), `Warning DatasetNotFound dataset "helmet-ds" not found`)
}

func TestTrainReadyCreatesExactlyOneTrainPod(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.sync()
	f.report(trainReady(1))
	f.sync()
	require.Equal(t, []string{"create helmet-train-1"}, f.podWrites())

	pod := f.pod("helmet-train-1")
	require.Equal(t, map[string]string{
		"incrementallearningjob.sedna.io/name": "helmet", "incrementallearningjob.sedna.io/uid": "uid-1",
		"incrementallearningjob.sedna.io/worker-type": "train", roundLabel: "1", attemptLabel: "1",
	}, pod.Labels)
	require.Equal(t, "uid-1", string(metav1.GetControllerOf(pod).UID))
	require.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy, "GM retries stages with new pods")
	require.Equal(t, "edge-1", pod.Spec.NodeName, "placement is the template's")
	require.False(t, pod.Spec.HostNetwork)
	fieldRef := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	want := []corev1.EnvVar{
		{Name: "input_shape", Value: "352,640"},
		{Name: "SEDNA_HOST_IP", ValueFrom: fieldRef("status.hostIP")},
		{Name: "NAMESPACE", Value: "ns"},
		{Name: "JOB_NAME", Value: "helmet"},
		{Name: "WORKER_NAME", ValueFrom: fieldRef("metadata.name")},
		{Name: "LC_SERVER", Value: "http://$(SEDNA_HOST_IP):9100"},
		{Name: "SEDNA_WORKER_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "helmet-incrementallearningjob-worker-token"}, Key: "token"}}},
		{Name: "BASE_MODEL_URL", Value: "/home/data/models/base/model.pb"},
		{Name: "MODEL_URL", Value: "/home/data/output/train/1"},
		{Name: "TRAIN_DATASET_URL", Value: "/home/data/output/data/train/1/data.txt"},
		{Name: "ORIGINAL_DATASET_URL", Value: "/home/data/data/helmet/train_data/data.txt"},
		{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
	}
	if diff := cmp.Diff(want, pod.Spec.Containers[0].Env); diff != "" {
		t.Fatalf("train env (-want +got):\n%s", diff)
	}
	hostPath := func(path string, typ corev1.HostPathType) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(typ)}}
	}
	wantVolumes := []corev1.Volume{
		{Name: "models-base", VolumeSource: hostPath("/models/base", corev1.HostPathDirectory)},
		{Name: "output-train", VolumeSource: hostPath("/output/train", corev1.HostPathDirectoryOrCreate)},
		{Name: "output-data-train-1", VolumeSource: hostPath("/output/data/train/1", corev1.HostPathDirectory)},
		{Name: "data-helmet-train-data", VolumeSource: hostPath("/data/helmet/train_data", corev1.HostPathDirectory)},
	}
	if diff := cmp.Diff(wantVolumes, pod.Spec.Volumes); diff != "" {
		t.Fatalf("train volumes (-want +got):\n%s", diff)
	}
	require.Equal(t, []corev1.VolumeMount{
		{Name: "models-base", MountPath: "/home/data/models/base"},
		{Name: "output-train", MountPath: "/home/data/output/train"},
		{Name: "output-data-train-1", MountPath: "/home/data/output/data/train/1"},
		{Name: "data-helmet-train-data", MountPath: "/home/data/data/helmet/train_data"},
	}, pod.Spec.Containers[0].VolumeMounts)

	status := f.job().Status
	require.Equal(t, sednav1.StageTrain, status.Stage)
	require.Equal(t, sednav1.StageStarting, status.StageState)
	require.Equal(t, int32(1), status.Round)
	require.JSONEq(t, `{"input":{"models":[{"format":"pb","url":"/models/base/model.pb"}],"dataURL":"/output/data/train/1/data.txt","outputDir":"/output/train/1"}}`,
		status.StageData)
	published, _ := f.published()
	require.Equal(t, sednav1.StageStarting, published.Status.StageState, "the LC learns the pod was created")
	require.Equal(t, int32(1), published.Status.Round)

	f.sync()
	require.Empty(t, f.podWrites(), "the pod exists: no second one")

	// The cache has not seen the pod yet: the deterministic name keeps it at one pod.
	f.report(trainReady(1))
	require.NoError(t, f.kubeInformers.Core().V1().Pods().Informer().GetIndexer().Delete(pod))
	f.sync()
	require.Equal(t, []string{"create helmet-train-1"}, f.podWrites(), "attempted, refused with AlreadyExists")
	pods, err := f.kube.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
}

func TestASucceededPodWhoseReportNeverCameFailsTheStage(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	finished := func(ago time.Duration) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "train",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(f.clock.Add(-ago))}}}}}
	}
	f.setPodStatus("helmet-train-1", finished(time.Minute))
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState, "within the grace period the report may still come")

	f.setPodStatus("helmet-train-1", finished(reportGrace+time.Second))
	f.sync()
	status := f.job().Status
	require.Equal(t, sednav1.StageFailed, status.StageState)
	failed := meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed)
	require.NotNil(t, failed)
	require.Equal(t, "WorkerDidNotReport", failed.Reason)
	require.Contains(t, failed.Message, "helmet-train-1 succeeded 2m1s ago")
	published, _ := f.published()
	require.Equal(t, sednav1.StageFailed, published.Status.StageState, "the LC must hear of it to end the round")
}

func TestRunningPodPublishesRunningWithTheRound(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	f.setPodStatus("helmet-train-1", corev1.PodStatus{Phase: corev1.PodRunning})
	f.sync()
	published, nodes := f.published()
	require.Equal(t, []string{"edge-1"}, nodes)
	require.Equal(t, sednav1.StageTrain, published.Status.Stage)
	require.Equal(t, sednav1.StageRunning, published.Status.StageState)
	require.Equal(t, int32(1), published.Status.Round)
	training := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionTraining)
	require.Equal(t, metav1.ConditionTrue, training.Status)
	require.Equal(t, "TrainRunning", training.Reason)

	// A succeeded pod does not complete the stage: the LC does, from the worker's report.
	f.setPodStatus("helmet-train-1", corev1.PodStatus{Phase: corev1.PodSucceeded})
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState)
	f.report(map[string]any{"phase": "Train", "status": "Completed", "round": 1,
		"output": map[string]any{"models": []map[string]any{{"format": "pb", "url": "/output/train/1/model.pb"}}}})
	f.sync()
	status := f.job().Status
	require.Equal(t, sednav1.StageCompleted, status.StageState)
	require.JSONEq(t, `{"input":{"models":[{"format":"pb","url":"/models/base/model.pb"}],"dataURL":"/output/data/train/1/data.txt","outputDir":"/output/train/1"},
		"output":{"models":[{"format":"pb","url":"/output/train/1/model.pb"}]}}`, status.StageData)
	require.Empty(t, f.podWrites())
}

func TestFailedPodsAreRetriedWithBackoffThenTheStageFails(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	f.events()

	f.failPod("helmet-train-1")
	f.sync()
	require.Empty(t, f.podWrites(), "waits 10s after the first failure")
	require.Equal(t, sednav1.StageStarting, f.job().Status.StageState)

	f.clock = f.clock.Add(10 * time.Second)
	f.sync()
	require.Equal(t, []string{"create helmet-train-1-2"}, f.podWrites())
	require.Equal(t, "2", f.pod("helmet-train-1-2").Labels[attemptLabel])
	require.Contains(t, f.events(), "Warning StagePodRetried Created pod helmet-train-1-2, try 2 of 3, after pod helmet-train-1 failed: container train exited with 1 (Error)")

	f.failPod("helmet-train-1-2")
	f.clock = f.clock.Add(10 * time.Second)
	f.sync()
	require.Empty(t, f.podWrites(), "the second wait is 20s")
	f.clock = f.clock.Add(10 * time.Second)
	f.sync()
	require.Equal(t, []string{"create helmet-train-1-3"}, f.podWrites())

	f.failPod("helmet-train-1-3")
	f.clock = f.clock.Add(time.Hour)
	f.sync()
	require.Empty(t, f.podWrites(), "three tries: no fourth")
	status := f.job().Status
	require.Equal(t, sednav1.StageFailed, status.StageState)
	failed := meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed)
	require.Equal(t, metav1.ConditionTrue, failed.Status)
	require.Equal(t, reasonStagePodFailed, failed.Reason)
	require.Equal(t, "round 1: the train pod failed 3 times, last helmet-train-1-3: container train exited with 1 (Error)", failed.Message)
	require.Contains(t, f.events(), "Warning StagePodFailed "+failed.Message)
	published, _ := f.published()
	require.Equal(t, sednav1.StageFailed, published.Status.StageState)
	require.Equal(t, int32(1), published.Status.Round)

	f.sync()
	require.Empty(t, f.podWrites())
	require.Empty(t, f.events(), "the failure is reported once")

	// The LC closes the round; the next one clears Failed and removes the old round's pods.
	f.report(map[string]any{"phase": "Train", "status": "Failed", "round": 1, "message": "round 1: GM reports the Train stage failed"})
	f.report(map[string]any{"phase": "Train", "status": "Waiting", "round": 1,
		"roundResult": map[string]any{"round": 1, "stage": "Train", "deployed": false, "message": "round 1 failed"}})
	f.sync()
	require.Equal(t, reasonStagePodFailed, meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionFailed).Reason)
	next := trainReady(2)
	f.report(next)
	f.sync()
	require.ElementsMatch(t, []string{"create helmet-train-2", "delete helmet-train-1", "delete helmet-train-1-2", "delete helmet-train-1-3"}, f.podWrites())
	failed = meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionFailed)
	require.Equal(t, metav1.ConditionFalse, failed.Status)
	require.Equal(t, reasonRoundStarted, failed.Reason)
}

func TestADeletedStagePodIsCreatedAgain(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	f.setPodStatus("helmet-train-1", corev1.PodStatus{Phase: corev1.PodRunning})
	f.sync()
	require.NoError(t, f.kube.CoreV1().Pods("ns").Delete(context.Background(), "helmet-train-1", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.Equal(t, []string{"create helmet-train-1"}, f.podWrites())
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState, "GM never moves a stage back")
}

func TestEvalReadyCreatesTheEvalPod(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	f.report(map[string]any{"phase": "Train", "status": "Completed", "round": 1})
	f.report(map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": map[string]any{
		"models":  []map[string]any{{"format": "pb", "url": "/output/train/1/model.pb"}, {"format": "pb", "url": "/models/deploy/model.pb"}},
		"dataURL": "/output/data/eval/1/data.txt",
	}})
	f.sync()
	require.Equal(t, []string{"create helmet-eval-1"}, f.podWrites())
	pod := f.pod("helmet-eval-1")
	require.Equal(t, "eval", pod.Labels["incrementallearningjob.sedna.io/worker-type"])
	env := envOf(pod.Spec.Containers[0])
	require.Equal(t, "/home/data/output/train/1/model.pb;/home/data/models/deploy/model.pb", env["MODEL_URLS"].Value)
	require.Equal(t, "/home/data/output/data/eval/1/data.txt", env["TEST_DATASET_URL"].Value)
	require.Equal(t, "/home/data/data/helmet/train_data/data.txt", env["ORIGINAL_DATASET_URL"].Value)
	for _, name := range []string{"NAMESPACE", "JOB_NAME", "WORKER_NAME", "LC_SERVER", "DATA_PATH_PREFIX"} {
		require.Contains(t, env, name)
	}
	require.NotContains(t, env, "MODEL_URL")
	status := f.job().Status
	require.Equal(t, sednav1.StageEval, status.Stage)
	require.Equal(t, sednav1.StageStarting, status.StageState)
}

func TestRoundResultsAreAppendedAndCapped(t *testing.T) {
	job := helmet()
	for i := int32(1); i <= 10; i++ {
		job.Status.Rounds = append(job.Status.Rounds, sednav1.LearningRound{Round: i})
	}
	job.Status.Stage, job.Status.StageState, job.Status.Round = sednav1.StageDeploy, sednav1.StageReady, 11
	f := newFixture(t, objects(job))
	f.sync()
	require.NotContains(t, f.deployment("helmet-deployment-inference").Spec.Template.Annotations, deployedRoundAnnotation)
	f.report(map[string]any{"phase": "Deploy", "status": "Completed", "round": 11})
	f.report(map[string]any{"phase": "Train", "status": "Waiting", "round": 11, "roundResult": map[string]any{
		"round": 11, "stage": "Deploy", "deployed": true, "model": "/output/train/11/model.pb",
		"metrics": []map[string]string{{"key": "precision", "value": "[0.9,0.8]"}},
	}})
	f.sync()
	rounds := f.job().Status.Rounds
	require.Len(t, rounds, sednav1.MaxRoundHistory)
	require.Equal(t, int32(2), rounds[0].Round)
	require.Equal(t, sednav1.LearningRound{Round: 11, Stage: sednav1.StageDeploy, Deployed: true, Model: "/output/train/11/model.pb",
		Metrics: []sednav1.Metric{{Key: "precision", Value: "[0.9,0.8]"}}}, rounds[9])
	require.Contains(t, f.events(), "Normal RoundEnded round 11 ended in stage Deploy, deployed: true")
	deployed := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionDeployed)
	require.NotNil(t, deployed)
	require.Equal(t, metav1.ConditionTrue, deployed.Status)
	require.Equal(t, "round 11: /output/train/11/model.pb was deployed", deployed.Message)

	// Without hot update the deployed round rolls the inference worker onto the new model.
	d := f.deployment("helmet-deployment-inference")
	require.Equal(t, "11", d.Spec.Template.Annotations[deployedRoundAnnotation])

	// The same report again changes nothing.
	f.report(map[string]any{"phase": "Train", "status": "Waiting", "round": 11, "roundResult": map[string]any{"round": 11, "stage": "Deploy", "deployed": true,
		"model": "/output/train/11/model.pb", "metrics": []map[string]string{{"key": "precision", "value": "[0.9,0.8]"}}}})
	f.sync()
	require.Len(t, f.job().Status.Rounds, sednav1.MaxRoundHistory)
	for _, a := range f.sedna.Actions() {
		require.NotEqual(t, "update", a.GetVerb())
	}
}

func TestARejectedDeploySaysWhyInACondition(t *testing.T) {
	job := helmet()
	job.Status.Stage, job.Status.StageState, job.Status.Round = sednav1.StageDeploy, sednav1.StageWaiting, 2
	f := newFixture(t, objects(job))
	f.sync()
	f.report(map[string]any{"phase": "Train", "status": "Waiting", "round": 2, "roundResult": map[string]any{
		"round": 2, "stage": "Deploy", "deployed": false, "message": "precision_delta[0] = -0.02 is not > 0.01"}})
	f.sync()
	c := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionDeployed)
	require.NotNil(t, c)
	require.Equal(t, metav1.ConditionFalse, c.Status)
	require.Equal(t, "NotDeployed", c.Reason)
	require.Equal(t, "round 2: the trained model was not deployed: precision_delta[0] = -0.02 is not > 0.01", c.Message)
	require.NotContains(t, f.deployment("helmet-deployment-inference").Spec.Template.Annotations, deployedRoundAnnotation)
}

func TestHotUpdateMountsTheJobsDirectory(t *testing.T) {
	job := helmet()
	job.Name = "Helmet"
	job.Spec.DeploySpec.Model.HotUpdateEnabled = true
	job.Spec.DeploySpec.Model.PollPeriodSeconds = 30
	f := newFixture(t, objects(job))
	f.sync("ns/Helmet")
	d := f.deployment("Helmet-deployment-inference")
	spec := d.Spec.Template.Spec
	require.Contains(t, spec.Volumes, corev1.Volume{Name: "sedna-model-hot-update-volume", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: "/var/lib/sedna/model-hot-update/ns/incrementallearningjob/helmet/", Type: ptr.To(corev1.HostPathDirectoryOrCreate),
	}}})
	require.Contains(t, spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "sedna-model-hot-update-volume", MountPath: "/model-hot-update"})
	env := envOf(spec.Containers[0])
	require.Equal(t, "true", env["MODEL_HOT_UPDATE"].Value)
	require.Equal(t, "30", env["MODEL_POLL_PERIOD_SECONDS"].Value)
	require.Equal(t, "/model-hot-update/model_config.json", env["MODEL_HOT_UPDATE_CONFIG"].Value)

	s := f.downstream.published[runtime.Key(Kind, "ns", "Helmet")]
	require.Contains(t, string(s.object), `"sedna.io/model-hot-update-config":"/var/lib/sedna/model-hot-update/ns/incrementallearningjob/helmet/model_config.json"`)
	require.NotContains(t, f.job2("Helmet").Annotations, HotUpdateAnnotation, "never written to the API server")

	// With hot update, a deployed round does not roll the worker.
	hash := d.Annotations["sedna.io/spec-hash"]
	f.report2("Helmet", map[string]any{"phase": "Deploy", "status": "Completed", "round": 1})
	f.sync("ns/Helmet")
	require.Equal(t, hash, f.deployment("Helmet-deployment-inference").Annotations["sedna.io/spec-hash"])
}

func (f *fixture) job2(name string) *sednav1.IncrementalLearningJob {
	f.t.Helper()
	job, err := f.sedna.SednaV1alpha1().IncrementalLearningJobs("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return job
}

func (f *fixture) report2(name string, content map[string]any) {
	f.t.Helper()
	data := fmt.Sprintf(`{"phase":%q,"status":%q,"round":%d}`, content["phase"], content["status"], content["round"])
	require.NoError(f.t, f.c.HandleReport(context.Background(), "edge-1", runtime.Key(Kind, "ns", name), []byte(data)))
}

func TestWorkerReportsAreOnlyCounted(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(map[string]any{"phase": "train", "status": "completed", "worker": "helmet-train-1", "round": 1,
		"output": map[string]any{"models": []any{}, "ownerInfo": map[string]any{}}})
	require.Equal(t, 0, f.c.queue.Len())
	require.Empty(t, f.c.takePending("ns/helmet"))
	err := f.c.HandleReport(context.Background(), "edge-1", runtime.Key(Kind, "ns", "helmet"), []byte(`{"phase":"Nope","status":"Ready"}`))
	require.ErrorContains(t, err, `phase "Nope" is not a stage`)
}

func TestDeletedJobIsWithdrawn(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.sync()
	f.report(trainReady(1))
	require.NoError(t, f.sedna.SednaV1alpha1().IncrementalLearningJobs("ns").Delete(context.Background(), "helmet", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.Empty(t, f.downstream.published)
	require.Empty(t, f.models.Nodes(runtime.Key("model", "ns", "initial-model")))
	require.Empty(t, f.c.takePending("ns/helmet"))
}

func TestStageReportsStayUntilTheStatusIsWritten(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sedna.PrependReactor("update", "incrementallearningjobs", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, fmt.Errorf("conflict")
	})
	err := f.c.sync(context.Background(), "ns/helmet")
	require.ErrorContains(t, err, "conflict")
	require.Len(t, f.c.takePending("ns/helmet"), 1)
	require.True(t, strings.HasPrefix(f.podWrites()[0], "create helmet-train-1"))
}

func TestForgedStageInputsOutsideTheJobAreRefused(t *testing.T) {
	evalReady := func(models []string, data, index string) map[string]any {
		refs := []map[string]any{}
		for _, m := range models {
			refs = append(refs, map[string]any{"format": "pb", "url": m})
		}
		input := map[string]any{"models": refs, "dataURL": data}
		if index != "" {
			input["dataIndexURL"] = index
		}
		return map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": input}
	}
	trainWith := func(change func(input map[string]any)) map[string]any {
		report := trainReady(1)
		change(report["input"].(map[string]any))
		return report
	}
	cases := map[string]struct {
		outputDir string
		reports   []map[string]any
		env, url  string
	}{
		"train BASE_MODEL_URL whose parent is /": {
			reports: []map[string]any{trainWith(func(in map[string]any) {
				in["models"] = []map[string]any{{"format": "pb", "url": "/model.pb"}}
			})},
			env: "BASE_MODEL_URL", url: "/model.pb",
		},
		"train BASE_MODEL_URL next to the declared model": {
			reports: []map[string]any{trainWith(func(in map[string]any) {
				in["models"] = []map[string]any{{"format": "pb", "url": "/models/other/model.pb"}}
			})},
			env: "BASE_MODEL_URL", url: "/models/other/model.pb",
		},
		"train MODEL_URL equal to outputDir (its parent / would be mounted read-write)": {
			reports: []map[string]any{trainWith(func(in map[string]any) { in["outputDir"] = "/output" })},
			env:     "MODEL_URL", url: "/output",
		},
		"train MODEL_URL climbing out of outputDir": {
			reports: []map[string]any{trainWith(func(in map[string]any) { in["outputDir"] = "/output/../etc" })},
			env:     "MODEL_URL", url: "/output/../etc",
		},
		"train TRAIN_DATASET_URL outside": {
			reports: []map[string]any{trainWith(func(in map[string]any) { in["dataURL"] = "/var/lib/kubelet/pki/data.txt" })},
			env:     "TRAIN_DATASET_URL", url: "/var/lib/kubelet/pki/data.txt",
		},
		"train TRAIN_DATASET_URL not clean": {
			reports: []map[string]any{trainWith(func(in map[string]any) { in["dataURL"] = "/output//data/train/1/data.txt" })},
			env:     "TRAIN_DATASET_URL", url: "/output//data/train/1/data.txt",
		},
		"train dataIndexURL outside": {
			reports: []map[string]any{trainWith(func(in map[string]any) { in["dataIndexURL"] = "/etc/kubernetes/admin.conf" })},
			env:     "ORIGINAL_DATASET_URL", url: "/etc/kubernetes/admin.conf",
		},
		"eval MODEL_URLS with a forged model": {
			reports: []map[string]any{trainReady(1), {"phase": "Train", "status": "Completed", "round": 1},
				evalReady([]string{"/root/.ssh/id_rsa", "/models/deploy/model.pb"}, "/output/data/eval/1/data.txt", "")},
			env: "MODEL_URLS", url: "/root/.ssh/id_rsa",
		},
		"eval TEST_DATASET_URL outside": {
			reports: []map[string]any{trainReady(1), {"phase": "Train", "status": "Completed", "round": 1},
				evalReady([]string{"/output/train/1/model.pb"}, "/data/other/data.txt", "")},
			env: "TEST_DATASET_URL", url: "/data/other/data.txt",
		},
		"eval dataIndexURL outside": {
			reports: []map[string]any{trainReady(1), {"phase": "Train", "status": "Completed", "round": 1},
				evalReady([]string{"/output/train/1/model.pb"}, "/output/data/eval/1/data.txt", "/proc/1/environ")},
			env: "ORIGINAL_DATASET_URL", url: "/proc/1/environ",
		},
		"s3 output in another bucket": {
			outputDir: "s3://jobs/helmet/output",
			reports: []map[string]any{trainWith(func(in map[string]any) {
				in["outputDir"], in["dataURL"] = "s3://jobs/helmet/output/train/1", "s3://jobs/helmet/output/data/train/1/data.txt"
				in["models"] = []map[string]any{{"format": "pb", "url": "s3://other-bucket/helmet/output/train/0/model.pb"}}
			})},
			env: "BASE_MODEL_URL", url: "s3://other-bucket/helmet/output/train/0/model.pb",
		},
		"s3 output outside the declared prefix": {
			outputDir: "s3://jobs/helmet/output",
			reports: []map[string]any{trainWith(func(in map[string]any) {
				in["outputDir"], in["dataURL"] = "s3://jobs/helmet/output/train/1", "s3://jobs/other-job/data.txt"
			})},
			env: "TRAIN_DATASET_URL", url: "s3://jobs/other-job/data.txt",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			job := helmet()
			if tc.outputDir != "" {
				job.Spec.OutputDir = tc.outputDir
			}
			f := newFixture(t, objects(job))
			for _, r := range tc.reports {
				f.report(r)
			}
			f.sync()
			for _, write := range f.podWrites() {
				require.NotContains(t, write, "create helmet-eval", "no eval pod from a forged input")
			}
			if len(tc.reports) == 1 {
				require.Empty(t, f.podWrites(), "no pod from a forged input")
			}
			status := f.job().Status
			require.Equal(t, sednav1.StageFailed, status.StageState)
			failed := meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed)
			require.NotNil(t, failed)
			require.Equal(t, metav1.ConditionTrue, failed.Status)
			require.Equal(t, "URLRefused", failed.Reason)
			require.Contains(t, failed.Message, fmt.Sprintf("%s %q was refused", tc.env, tc.url))
			require.Contains(t, f.events(), "Warning URLRefused "+failed.Message)
			published, _ := f.published()
			require.Equal(t, sednav1.StageFailed, published.Status.StageState, "the LC learns the stage failed and ends the round")
		})
	}
}

func TestADataIndexInsideTheJobIsTheOriginalDataset(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	report := trainReady(1)
	report["input"].(map[string]any)["dataIndexURL"] = "/output/data/train/1/dataIndex.txt"
	f.report(report)
	f.sync()
	require.Equal(t, []string{"create helmet-train-1"}, f.podWrites())
	env := envOf(f.pod("helmet-train-1").Spec.Containers[0])
	require.Equal(t, "/home/data/output/data/train/1/dataIndex.txt", env["ORIGINAL_DATASET_URL"].Value)
}

func TestAProblemReportSetsStalledUntilAReportWithoutOne(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	require.Equal(t, []string{"create helmet-train-1"}, f.podWrites())
	f.events()

	const message = "writing /output/data/train/1/data.txt: open /output/data/train/1/data.txt: read-only file system (EROFS)"
	blocked := map[string]any{"phase": "Train", "status": "Ready", "round": 1,
		"problem": map[string]any{"reason": "OutputNotWritable", "message": message}}
	f.report(blocked)
	f.sync()
	require.Empty(t, f.podWrites(), "a report of the state GM holds is no new transition")
	status := f.job().Status
	require.Equal(t, sednav1.StageStarting, status.StageState, "the pod GM created still decides the state")
	stalled := meta.FindStatusCondition(status.Conditions, "Stalled")
	require.NotNil(t, stalled)
	require.Equal(t, metav1.ConditionTrue, stalled.Status)
	require.Equal(t, "OutputNotWritable", stalled.Reason)
	require.Equal(t, message, stalled.Message)
	require.Equal(t, []string{"Warning OutputNotWritable " + message}, f.events())

	f.report(blocked) // the same problem again: no second event
	f.sync()
	require.Empty(t, f.events())

	f.report(map[string]any{"phase": "Train", "status": "Ready", "round": 1,
		"problem": map[string]any{"reason": "DatasetIndexNotReadable", "message": "reading /data/helmet/train_data/data.txt: EACCES"}})
	f.sync()
	require.Equal(t, []string{"Warning DatasetIndexNotReadable reading /data/helmet/train_data/data.txt: EACCES"}, f.events(),
		"a new reason is told once")

	f.report(map[string]any{"phase": "Train", "status": "Ready", "round": 1})
	f.sync()
	stalled = meta.FindStatusCondition(f.job().Status.Conditions, "Stalled")
	require.Equal(t, metav1.ConditionFalse, stalled.Status)
	require.Equal(t, "Progressing", stalled.Reason)
	require.Empty(t, f.podWrites())

	require.ErrorContains(t, f.c.HandleReport(context.Background(), "edge-1", runtimeKey("helmet"),
		[]byte(`{"phase":"Train","status":"Ready","round":1,"problem":{"reason":"not a reason!","message":"x"}}`)),
		`problem reason "not a reason!" is not a CamelCase word`)
}

func TestNoStalledConditionWithoutAProblem(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	require.Nil(t, meta.FindStatusCondition(f.job().Status.Conditions, "Stalled"))
}

func TestTheReportGraceCountsOnlyWhileTheLCIsConnected(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	// The edge went offline; the pod succeeded there and its status reached the API server long
	// ago. The worker's report waits in the LC's outbox.
	f.channel.set("edge-1", false, time.Time{})
	f.setPodStatus("helmet-train-1", corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "train",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(f.clock)}}}}})
	f.clock = f.clock.Add(10 * time.Minute)
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState, "offline for 10 minutes: the silence does not count")

	// The LC reconnects: the job is enqueued and the grace starts now.
	for f.c.queue.Len() > 0 {
		key, _ := f.c.queue.Get()
		f.c.queue.Done(key)
	}
	f.channel.set("edge-1", true, f.clock)
	require.Equal(t, 1, f.c.queue.Len(), "a connect enqueues the jobs of the node")
	f.clock = f.clock.Add(time.Minute)
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState)

	// A disconnect resets it: connected again 30 s later, the grace starts over.
	f.channel.set("edge-1", false, time.Time{})
	f.clock = f.clock.Add(30 * time.Second)
	f.channel.set("edge-1", true, f.clock)
	f.clock = f.clock.Add(reportGrace - time.Second)
	f.sync()
	require.Equal(t, sednav1.StageRunning, f.job().Status.StageState, "connected for less than the grace since the last connect")

	// Connected and silent for the whole grace: the report is lost.
	f.clock = f.clock.Add(2 * time.Second)
	f.sync()
	status := f.job().Status
	require.Equal(t, sednav1.StageFailed, status.StageState)
	failed := meta.FindStatusCondition(status.Conditions, sednav1.ConditionFailed)
	require.Equal(t, "WorkerDidNotReport", failed.Reason)
	require.Contains(t, failed.Message, "did not come in 2m1s with the LC connected")
}

func TestWorkersGetTheJobsTokenAndTheLCLearnsItsWorkers(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	f.report(trainReady(1))
	f.sync()
	ctx := context.Background()

	// The Secret: created once, controlled by the job, labelled, 32 random bytes in base64url.
	secret, err := f.kube.CoreV1().Secrets("ns").Get(ctx, "helmet-incrementallearningjob-worker-token", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "true", secret.Labels["sedna.io/worker-token"])
	require.Equal(t, "uid-1", string(metav1.GetControllerOf(secret).UID))
	token := string(secret.Data["token"])
	require.Len(t, token, 43)
	require.NotContains(t, token, "=")

	tokenEnv := corev1.EnvVar{Name: "SEDNA_WORKER_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "helmet-incrementallearningjob-worker-token"}, Key: "token"}}}
	for _, c := range f.pod("helmet-train-1").Spec.Containers {
		require.Equal(t, tokenEnv, envOf(c)["SEDNA_WORKER_TOKEN"], c.Name)
	}
	inference := f.deployment("helmet-deployment-inference")
	for _, c := range inference.Spec.Template.Spec.Containers {
		require.Equal(t, tokenEnv, envOf(c)["SEDNA_WORKER_TOKEN"], c.Name)
	}

	// The workers: the train pod and an inference pod on edge-1 with their IPs; a pod of the job
	// on another node, and one that ended, are not the LC's business.
	train := f.pod("helmet-train-1")
	train.ResourceVersion = "40"
	train.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.7"}
	_, err = f.kube.CoreV1().Pods("ns").UpdateStatus(ctx, train, metav1.UpdateOptions{})
	require.NoError(t, err)
	workerPod := func(name, node, ip, rv string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv, Labels: inference.Spec.Template.Labels},
			Spec:       *inference.Spec.Template.Spec.DeepCopy(),
			Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
		}
	}
	elsewhere := workerPod("helmet-deployment-inference-abc-2", "edge-2", "10.2.0.9", "41", corev1.PodRunning)
	elsewhere.Spec.NodeName = "edge-2"
	for _, pod := range []*corev1.Pod{
		workerPod("helmet-deployment-inference-abc-1", "edge-1", "10.1.0.8", "42", corev1.PodRunning),
		elsewhere,
		workerPod("helmet-deployment-inference-abc-0", "edge-1", "10.1.0.3", "39", corev1.PodFailed),
	} {
		_, err := f.kube.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.refresh()
	f.sync()
	published, nodes := f.published()
	require.Equal(t, []string{"edge-1"}, nodes)
	require.Equal(t, workerauth.HashToken(token), published.Annotations["sedna.io/worker-token-sha256"])
	require.JSONEq(t, `[
		{"pod":"helmet-deployment-inference-abc-1","worker":"helmet-deployment-inference-abc-1","ip":"10.1.0.8","kind":"inference"},
		{"pod":"helmet-train-1","worker":"helmet-train-1","ip":"10.1.0.7","kind":"train"}]`,
		published.Annotations["sedna.io/workers"])
	require.Equal(t, uint64(42), f.downstream.published[runtimeKey("helmet")].version, "the newest pod's version")
	require.NotContains(t, f.job().Annotations, "sedna.io/workers", "never written to the API server")

	// A pod's new IP wakes the job and reaches the LC with a newer version.
	drain(f)
	moved := f.pod("helmet-deployment-inference-abc-1")
	moved.ResourceVersion, moved.Status.PodIP = "50", "10.1.0.99"
	f.c.enqueueLabeled(moved)
	require.Equal(t, 1, drain(f), "the pod change enqueues its job")
	f.c.enqueueLabeled(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", Labels: map[string]string{
		"incrementallearningjob.sedna.io/name": "helmet", "incrementallearningjob.sedna.io/uid": "uid-of-a-deleted-job"}}})
	require.Equal(t, 0, drain(f), "a pod of an earlier job of the same name does not")
	_, err = f.kube.CoreV1().Pods("ns").UpdateStatus(ctx, moved, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.sync()
	published, _ = f.published()
	require.Contains(t, published.Annotations["sedna.io/workers"], `"ip":"10.1.0.99"`)
	require.Equal(t, uint64(50), f.downstream.published[runtimeKey("helmet")].version)

	// The token is never rotated by a sync.
	f.sync()
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource == "secrets" {
			require.Contains(t, []string{"get", "list", "watch"}, a.GetVerb(), "no secret write: %v", a)
		}
	}
	secret, err = f.kube.CoreV1().Secrets("ns").Get(ctx, "helmet-incrementallearningjob-worker-token", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, token, string(secret.Data["token"]))
}

func TestASecretOfTheTokensNameTheJobDoesNotControlBlocksIt(t *testing.T) {
	squatter := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helmet-incrementallearningjob-worker-token", Namespace: "ns",
		Labels: map[string]string{"sedna.io/worker-token": "true"}}, Data: map[string][]byte{"token": []byte("known-to-the-attacker")}}
	f := newFixture(t, objects(helmet()), squatter)
	f.report(trainReady(1))
	f.sync()
	require.Empty(t, f.podWrites())
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.Equal(t, "WorkerTokenConflict", ready.Reason)
	require.Contains(t, ready.Message, "secret ns/helmet-incrementallearningjob-worker-token exists and is not controlled by IncrementalLearningJob helmet")
	published, _ := f.published()
	require.NotContains(t, published.Annotations, "sedna.io/worker-token-sha256")
}

// drain empties the controller's queue and returns how many keys it held.
func drain(f *fixture) int {
	n := 0
	for f.c.queue.Len() > 0 {
		key, _ := f.c.queue.Get()
		f.c.queue.Done(key)
		f.c.queue.Forget(key)
		n++
	}
	return n
}

// TestAForeignDeploymentOutsideTheCacheIsAConflict: the child caches hold only objects with the
// job's labels, so a Deployment name taken by an unlabeled object is found by the create; it is
// read from the API server and reported as a conflict, not mistaken for a lagging cache.
func TestAForeignDeploymentOutsideTheCacheIsAConflict(t *testing.T) {
	f := newFixture(t, objects(helmet()))
	foreign := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "helmet-deployment-inference", Namespace: "ns"}}
	require.NoError(t, f.kube.Tracker().Add(foreign)) // in the API, not in the cache
	err := f.c.sync(context.Background(), "ns/helmet")
	require.ErrorContains(t, err, "deployment ns/helmet-deployment-inference exists and is not controlled by incremental learning job helmet")
	require.Contains(t, f.events(),
		"Warning ChildConflict deployment ns/helmet-deployment-inference exists and is not controlled by incremental learning job helmet")
}

// The train worker's output directory is a write target: the shared pod builder refuses a system
// tree for it (one mechanism with federated learning's aggregation Model).
func TestAnOutputDirInASystemTreeIsRefused(t *testing.T) {
	job := helmet()
	job.Spec.OutputDir = "/etc/sedna"
	f := newFixture(t, objects(job))
	report := trainReady(1)
	input := report["input"].(map[string]any)
	input["outputDir"], input["dataURL"] = "/etc/sedna/train/1", "/etc/sedna/data/train/1/data.txt"
	f.report(report)
	f.sync()
	require.Empty(t, f.podWrites())
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.NotNil(t, ready)
	require.Equal(t, reasonInvalidSpec, ready.Reason)
	require.Contains(t, ready.Message, `MODEL_URL: write target url "/etc/sedna/train/1"`)
}

// TestAConnectEnqueuesExactlyTheJobsOfTheNode: a job is its node's when its Dataset (in the job's
// namespace) is on the node; jobs of other nodes, and of a same-named Dataset in another
// namespace, are not enqueued.
func TestAConnectEnqueuesExactlyTheJobsOfTheNode(t *testing.T) {
	second := helmet()
	second.Name, second.UID = "second", "uid-2"
	elsewhere := helmet()
	elsewhere.Namespace, elsewhere.UID = "other", "uid-3"
	otherDS := dataset()
	otherDS.Namespace, otherDS.Spec.NodeName = "other", "edge-2"
	onEdge2 := helmet()
	onEdge2.Name, onEdge2.UID, onEdge2.Spec.Dataset.Name = "on-edge-2", "uid-4", "edge-2-ds"
	edge2DS := dataset()
	edge2DS.Name, edge2DS.Spec.NodeName = "edge-2-ds", "edge-2"
	f := newFixture(t, append(objects(helmet()), second, elsewhere, otherDS, onEdge2, edge2DS))
	drain := func() []string {
		var keys []string
		for f.c.queue.Len() > 0 {
			key, _ := f.c.queue.Get()
			f.c.queue.Done(key)
			keys = append(keys, key)
		}
		slices.Sort(keys)
		return keys
	}
	drain()
	f.channel.set("edge-1", true, f.clock)
	require.Equal(t, []string{"ns/helmet", "ns/second"}, drain())
	f.channel.set("edge-2", true, f.clock)
	require.Equal(t, []string{"ns/on-edge-2", "other/helmet"}, drain())
	f.channel.set("edge-3", true, f.clock)
	require.Empty(t, drain())
}
