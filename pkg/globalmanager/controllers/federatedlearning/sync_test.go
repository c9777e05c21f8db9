package federatedlearning

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func TestSyncCreatesServiceAggregatorAndTrainersWithUpstreamEnv(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	require.Equal(t, []string{"create services fl-aggregation", "create pods fl-aggregation", "create pods fl-train-0", "create pods fl-train-1"}, f.writes())

	svc, err := f.kube.CoreV1().Services("ns").Get(context.Background(), "fl-aggregation", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(7363), svc.Spec.Ports[0].Port)
	require.Equal(t, "aggregation", svc.Spec.Selector[workerTypeLabel])

	agg := f.pod("fl-aggregation")
	require.Equal(t, "aggregation", agg.Labels[workerTypeLabel])
	require.Equal(t, corev1.RestartPolicyOnFailure, agg.Spec.RestartPolicy)
	require.False(t, agg.Spec.HostNetwork)
	require.True(t, workers.IsControlledBy(agg, ownerOf(flJob()[0].(*sednav1.FederatedLearningJob))))
	require.Equal(t, map[string]string{
		"exit_round": "3", "NAMESPACE": "ns", "WORKER_NAME": "fl-aggregation", "JOB_NAME": "fl", EnvJobUID: "uid-fl", "AGG_BIND_PORT": "7363",
		"PARTICIPANTS_COUNT": "2", "TRANSMITTER": "ws", EnvAggToken: "secret:fl-federatedlearningjob-worker-token/token", EnvAggCompat: "true",
		"MODEL_URL": "/home/data/model/fl/model.pb", "DATA_PATH_PREFIX": "/home/data",
	}, envOf(agg.Spec.Containers[0]))
	// The aggregator writes the global model: its directory is mounted read-write, created when missing.
	require.Len(t, agg.Spec.Volumes, 1)
	require.Equal(t, "/model/fl", agg.Spec.Volumes[0].HostPath.Path)
	require.Equal(t, corev1.HostPathDirectoryOrCreate, *agg.Spec.Volumes[0].HostPath.Type)
	require.Equal(t, "/home/data/model/fl", agg.Spec.Containers[0].VolumeMounts[0].MountPath)
	require.False(t, agg.Spec.Containers[0].VolumeMounts[0].ReadOnly)

	for i, node := range []string{"edge-1", "edge-2"} {
		train := f.pod(TrainPodName("fl", i))
		require.Equal(t, node, train.Spec.NodeName)
		require.Equal(t, "train", train.Labels[workerTypeLabel])
		require.True(t, train.Spec.HostNetwork, "upstream runs trainers in the host's network")
		require.Equal(t, corev1.DNSClusterFirstWithHostNet, train.Spec.DNSPolicy, "AGG_IP must resolve from the host network")
		require.Equal(t, corev1.RestartPolicyOnFailure, train.Spec.RestartPolicy)
		require.Equal(t, map[string]string{
			"epochs": "1", "SEDNA_HOST_IP": "field:status.hostIP", "AGG_PORT": "7363", "AGG_IP": "fl-aggregation.ns",
			"WORKER_NAME": TrainPodName("fl", i), "JOB_NAME": "fl", "PARTICIPANTS_COUNT": "2", "NAMESPACE": "ns",
			"MODEL_NAME": "surface-defect", "DATASET_NAME": []string{"edge1-data", "edge2-data"}[i],
			"LC_SERVER": "http://$(SEDNA_HOST_IP):9100", "TRANSMITTER": "ws",
			workerauth.TokenEnv: "secret:fl-federatedlearningjob-worker-token/token", EnvAggToken: "secret:fl-federatedlearningjob-worker-token/token",
			"MODEL_URL": "/model/fl/model.pb", "TRAIN_DATASET_URL": []string{"/home/data/data/1/train.txt", "/home/data/data/2/train.txt"}[i],
			"DATA_PATH_PREFIX": "/home/data",
		}, envOf(train.Spec.Containers[0]))
		// A trainer never writes the global model: only its dataset's directory is mounted, read-only use.
		require.Len(t, train.Spec.Volumes, 1)
		require.Equal(t, []string{"/data/1", "/data/2"}[i], train.Spec.Volumes[0].HostPath.Path)
		require.Equal(t, corev1.HostPathDirectory, *train.Spec.Volumes[0].HostPath.Type)
	}

	job := f.job()
	require.Equal(t, sednav1.PhasePending, job.Status.Phase, "the pods are not in the cache yet")
	f.sync()
	job = f.job()
	require.Equal(t, sednav1.PhaseRunning, job.Status.Phase)
	require.Equal(t, int32(3), job.Status.Active)
	require.Equal(t, metav1.NewTime(now), *job.Status.StartTime)
	require.True(t, meta.IsStatusConditionTrue(job.Status.Conditions, sednav1.ConditionReady))
}

func TestSyncIsIdempotentAndAGMRestartCreatesNoDuplicates(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.sync()
	require.Empty(t, f.writes())
	f.restartGM()
	f.sync()
	require.Empty(t, f.writes())
	pods, err := f.kube.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 3)
}

func TestStaleCacheCreatesNoSecondPod(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	// A GM whose pod cache is empty (it has not seen the creates yet) tries again: the names are
	// taken, nothing is created.
	require.NoError(t, f.kubeInformers.Core().V1().Pods().Informer().GetIndexer().Replace(nil, ""))
	f.kube.ClearActions()
	require.NoError(t, f.c.sync(context.Background(), "ns/fl"))
	pods, err := f.kube.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 3)
}

func TestDeletedWorkerIsCreatedAgain(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	require.NoError(t, f.kube.CoreV1().Pods("ns").Delete(context.Background(), "fl-train-1", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.Equal(t, []string{"create pods fl-train-1"}, f.writes())

	// A pod still terminating is waited for, not created beside.
	pod := f.pod("fl-aggregation")
	pod.DeletionTimestamp = &metav1.Time{Time: now}
	_, err := f.kube.CoreV1().Pods("ns").Update(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.sync()
	require.Empty(t, f.writes())
}

func TestSpecEditReplacesTheWorkers(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.updateJob(func(job *sednav1.FederatedLearningJob) {
		job.Spec.TrainingWorkers[1].Template.Spec.Containers[0].Image = "trainer:v2"
	})
	f.sync()
	require.Equal(t, []string{"delete pods fl-train-1"}, f.writes(), "only the edited worker's running pod is replaced")
	require.Equal(t, "2", f.pod("fl-train-0").Annotations[generationAnnotation], "the kept pods serve the new generation")
	f.sync()
	require.Equal(t, []string{"create pods fl-train-1"}, f.writes())
	require.Equal(t, "trainer:v2", f.pod("fl-train-1").Spec.Containers[0].Image)

	// One training worker fewer: its pod goes, and every other worker's PARTICIPANTS_COUNT changes.
	f.updateJob(func(job *sednav1.FederatedLearningJob) { job.Spec.TrainingWorkers = job.Spec.TrainingWorkers[:1] })
	f.sync()
	require.ElementsMatch(t, []string{"delete pods fl-aggregation", "delete pods fl-train-0", "delete pods fl-train-1"}, f.writes())
	f.sync()
	require.Equal(t, []string{"create pods fl-aggregation", "create pods fl-train-0"}, f.writes())
	require.Equal(t, "1", envOf(f.pod("fl-aggregation").Spec.Containers[0])["PARTICIPANTS_COUNT"])
	require.Equal(t, int64(3), f.job().Status.ObservedGeneration)
}

func TestAFailedWorkerFailsTheJobNamingIt(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.setPhase("fl-aggregation", corev1.PodRunning)
	f.setPhase("fl-train-0", corev1.PodRunning)
	f.setPhase("fl-train-1", corev1.PodFailed, corev1.ContainerStatus{Name: "train",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}})
	f.sync()
	job := f.job()
	require.Equal(t, sednav1.PhaseFailed, job.Status.Phase)
	failed := meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionFailed)
	require.NotNil(t, failed)
	require.Equal(t, reasonWorkerFailed, failed.Reason)
	require.Equal(t, "pod fl-train-1 (training worker 1) failed: container train exited with 3 (Error)", failed.Message)
	require.Equal(t, int32(2), job.Status.Active)
	require.Equal(t, int32(1), job.Status.Failed)
	require.NotNil(t, job.Status.CompletionTime)

	// Final: a worker deleted now is not created again.
	require.NoError(t, f.kube.CoreV1().Pods("ns").Delete(context.Background(), "fl-train-0", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.Empty(t, f.writes())
	require.Equal(t, sednav1.PhaseFailed, f.job().Status.Phase)
}

func TestTheJobSucceedsWhenEveryTrainerSucceededAndNoWorkerIsActive(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.setPhase("fl-aggregation", corev1.PodRunning)
	f.setPhase("fl-train-0", corev1.PodSucceeded)
	f.sync()
	require.Equal(t, sednav1.PhaseRunning, f.job().Status.Phase)
	f.setPhase("fl-train-1", corev1.PodSucceeded)
	f.sync()
	require.Equal(t, sednav1.PhaseRunning, f.job().Status.Phase, "the aggregator is still active")
	f.setPhase("fl-aggregation", corev1.PodSucceeded)
	f.sync()
	job := f.job()
	require.Equal(t, sednav1.PhaseSucceeded, job.Status.Phase)
	require.Equal(t, int32(3), job.Status.Succeeded)
	require.Equal(t, int32(0), job.Status.Active)
	require.Equal(t, metav1.NewTime(now), *job.Status.CompletionTime)
	complete := meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionComplete)
	require.NotNil(t, complete)
	require.Equal(t, metav1.ConditionTrue, complete.Status)
	require.Equal(t, reasonWorkersSucceeded, complete.Reason)

	// An edit of an ended job runs it again with new pods.
	f.updateJob(func(job *sednav1.FederatedLearningJob) {
		job.Spec.AggregationWorker.Template.Spec.Containers[0].Image = "aggregator:v2"
	})
	f.sync()
	require.ElementsMatch(t, []string{"delete pods fl-aggregation", "delete pods fl-train-0", "delete pods fl-train-1"}, f.writes(),
		"the edited aggregator is replaced, and the trainers that had ended run again with it")
	require.Nil(t, meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionComplete))
	require.Nil(t, f.job().Status.CompletionTime)
	require.Equal(t, sednav1.PhaseRunning, f.job().Status.Phase)
}

func TestMissingReferencesBlockTheJob(t *testing.T) {
	objects := flJob()
	objects = append(objects[:3:3], objects[4:]...) // no edge2-data
	f := newFixture(t, objects)
	f.sync()
	require.Empty(t, f.writes())
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.NotNil(t, ready)
	require.Equal(t, metav1.ConditionFalse, ready.Status)
	require.Equal(t, reasonDatasetNotFound, ready.Reason)
	require.Equal(t, `dataset "edge2-data" of training worker 1 not found`, ready.Message)
	require.Equal(t, sednav1.PhasePending, f.job().Status.Phase)
}

func TestS3TransmitterAndStrictAdmission(t *testing.T) {
	objects := flJob()
	job := objects[0].(*sednav1.FederatedLearningJob)
	job.Annotations = map[string]string{CompatAnnotation: "false"}
	job.Spec.Transmitter = &sednav1.Transmitter{S3: &sednav1.S3Transmitter{AggregationDataPath: "s3://bucket/fl/", CredentialName: "s3-secret"}}
	job.Spec.PretrainedModel = &sednav1.ModelReference{Name: "pretrained"}
	objects = append(objects, model("pretrained", "/model/pre/init.pb"))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-secret", Namespace: "ns", Annotations: map[string]string{"s3-endpoint": "minio:9000", "s3-usehttps": "0"}},
		Data: map[string][]byte{"ACCESS_KEY_ID": []byte("a"), "SECRET_ACCESS_KEY": []byte("s")}}
	f := newFixture(t, objects, secret)
	f.sync()
	agg := envOf(f.pod("fl-aggregation").Spec.Containers[0])
	require.Equal(t, "false", agg[EnvAggCompat])
	require.Equal(t, "s3", agg["TRANSMITTER"])
	require.Equal(t, "s3://bucket/fl/", agg["AGG_DATA_PATH"], "the transmitter's path is written, not downloaded")
	require.Equal(t, "http://minio:9000", agg["S3_ENDPOINT_URL"])
	require.Equal(t, "secret:s3-secret/ACCESS_KEY_ID", agg["ACCESS_KEY_ID"])
	require.Equal(t, "/home/data/model/pre/init.pb", agg["PRETRAINED_MODEL_URL"])
	train := envOf(f.pod("fl-train-0").Spec.Containers[0])
	require.Equal(t, "s3", train["TRANSMITTER"])
	require.Equal(t, "s3://bucket/fl/", train["AGG_DATA_PATH"])
	require.Equal(t, "/home/data/model/pre/init.pb", train["PRETRAINED_MODEL_URL"])
}

func TestEachTrainingNodeGetsItsOwnWorkers(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		pod := f.pod(TrainPodName("fl", i))
		pod.Status.PodIP = ip
		_, err := f.kube.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	f.refresh()
	f.sync()
	copies := f.downstream.copies[runtime.Key(Kind, "ns", "fl")]
	require.Len(t, copies, 2)
	for i, node := range []string{"edge-1", "edge-2"} {
		var published sednav1.FederatedLearningJob
		require.NoError(t, json.Unmarshal(copies[node], &published))
		require.Equal(t, "FederatedLearningJob", published.Kind)
		list, err := workerauth.ParseWorkers(published.Annotations[workerauth.WorkersAnnotation])
		require.NoError(t, err)
		require.Equal(t, []workerauth.Worker{{Pod: TrainPodName("fl", i), Worker: TrainPodName("fl", i),
			IP: []string{"10.0.0.1", "10.0.0.2"}[i], Kind: "train"}}, list, "node %s", node)
		require.NotEmpty(t, published.Annotations[workerauth.TokenHashAnnotation])
	}
	require.Empty(t, f.job().Annotations[workerauth.WorkersAnnotation], "never written to the API server")

	// A deleted job is withdrawn from every node.
	require.NoError(t, f.sedna.SednaV1alpha1().FederatedLearningJobs("ns").Delete(context.Background(), "fl", metav1.DeleteOptions{}))
	f.refresh()
	f.sync()
	require.NotContains(t, f.downstream.copies, runtime.Key(Kind, "ns", "fl"))
}

var _ k8sruntime.Object = (*sednav1.FederatedLearningJob)(nil)

func TestAWorkerThatCannotBeBuiltBlocksTheJobWithInvalidSpec(t *testing.T) {
	objects := flJob()
	job := objects[0].(*sednav1.FederatedLearningJob)
	job.Spec.Transmitter = &sednav1.Transmitter{S3: &sednav1.S3Transmitter{AggregationDataPath: "s3://bucket/fl/", CredentialName: "s3-a"}}
	objects[1] = &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: "surface-defect", Namespace: "ns"},
		Spec: sednav1.ModelSpec{URL: "s3://models/fl/model.pb", Format: "pb", CredentialName: "s3-b"}}
	secret := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: map[string]string{"s3-endpoint": "minio:9000"}},
			Data: map[string][]byte{"ACCESS_KEY_ID": []byte("a"), "SECRET_ACCESS_KEY": []byte("s")}}
	}
	f := newFixture(t, objects, secret("s3-a"), secret("s3-b"))
	f.sync()
	require.Equal(t, []string(nil), f.writes())
	ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
	require.NotNil(t, ready)
	require.Equal(t, reasonInvalidSpec, ready.Reason)
	require.Contains(t, ready.Message, "the aggregation worker")
	require.Contains(t, ready.Message, "only one S3 credential Secret")
}

func TestAModelURLOnTheNodesRootOrASystemTreeBlocksTheJob(t *testing.T) {
	for _, url := range []string{"/", "/.", "/etc/kubernetes/manifests/m.pb"} {
		objects := flJob()
		objects[1].(*sednav1.Model).Spec.URL = url
		f := newFixture(t, objects)
		f.sync()
		require.Equal(t, []string(nil), f.writes(), url)
		ready := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionReady)
		require.NotNil(t, ready, url)
		require.Equal(t, reasonInvalidSpec, ready.Reason, url)
		require.Contains(t, ready.Message, `Model "ns/surface-defect" url "`+url+`"`)
	}
	objects := flJob()
	objects[1].(*sednav1.Model).Spec.URL = "/data/fl/model"
	f := newFixture(t, objects)
	f.sync()
	require.Contains(t, f.writes(), "create pods fl-aggregation")
	require.Equal(t, "/data/fl", f.pod("fl-aggregation").Spec.Volumes[0].HostPath.Path)
}

func TestTrainersGetAnS3ModelURLWithoutItsCredentials(t *testing.T) {
	objects := flJob()
	objects[1] = &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: "surface-defect", Namespace: "ns"},
		Spec: sednav1.ModelSpec{URL: "s3://models/fl/model.pb", Format: "pb", CredentialName: "s3-m"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-m", Namespace: "ns", Annotations: map[string]string{"s3-endpoint": "minio:9000"}},
		Data: map[string][]byte{"ACCESS_KEY_ID": []byte("a"), "SECRET_ACCESS_KEY": []byte("s")}}
	f := newFixture(t, objects, secret)
	f.sync()
	agg := envOf(f.pod("fl-aggregation").Spec.Containers[0])
	require.Equal(t, "s3://models/fl/model.pb", agg["MODEL_URL"])
	require.Equal(t, "secret:s3-m/ACCESS_KEY_ID", agg[workers.EnvS3AccessKeyID], "the aggregator writes the model")
	for i := range 2 {
		train := f.pod(TrainPodName("fl", i))
		env := envOf(train.Spec.Containers[0])
		require.Equal(t, "s3://models/fl/model.pb", env["MODEL_URL"])
		for _, name := range []string{workers.EnvS3Endpoint, workers.EnvS3AccessKeyID, workers.EnvS3SecretAccessKey} {
			require.NotContains(t, env, name, "a trainer gets no credential to write the model")
		}
		require.Empty(t, train.Spec.InitContainers)
	}
}

func TestATakenPodNameThatCannotBeReadIsAnError(t *testing.T) {
	f := newFixture(t, flJob())
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, apierrors.NewAlreadyExists(corev1.Resource("pods"), "fl-aggregation")
	})
	f.kube.PrependReactor("get", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver down")
	})
	err := f.c.sync(context.Background(), "ns/fl")
	require.ErrorContains(t, err, "reading pod ns/fl-aggregation, whose name is taken")
	require.ErrorContains(t, err, "apiserver down")
}

// TestTrainersRunningLongAfterTheAggregatorEndedAreNamed: a trainer cut off when training ended
// dials an aggregator that is gone; the job must say so rather than stay Running in silence, and
// stop saying so once the trainer ends.
func TestTrainersRunningLongAfterTheAggregatorEndedAreNamed(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.setPhase("fl-train-0", corev1.PodSucceeded)
	f.setPhase("fl-train-1", corev1.PodRunning)
	ended := func(ago time.Duration) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "aggregator", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now.Add(-ago))}}}
	}

	f.setPhase("fl-aggregation", corev1.PodSucceeded, ended(30*time.Second))
	f.sync()
	require.Nil(t, meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionTrainersStranded),
		"a trainer may still be receiving the final model")

	f.setPhase("fl-aggregation", corev1.PodSucceeded, ended(strandedGrace+time.Second))
	f.sync()
	job := f.job()
	require.Equal(t, sednav1.PhaseRunning, job.Status.Phase)
	stranded := meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionTrainersStranded)
	require.NotNil(t, stranded)
	require.Equal(t, metav1.ConditionTrue, stranded.Status)
	require.Equal(t, reasonAggregationEnded, stranded.Reason)
	require.Contains(t, stranded.Message, "training workers fl-train-1 still run")
	require.NotContains(t, stranded.Message, "fl-train-0")

	f.setPhase("fl-train-1", corev1.PodSucceeded)
	f.sync()
	job = f.job()
	require.Equal(t, sednav1.PhaseSucceeded, job.Status.Phase)
	stranded = meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionTrainersStranded)
	require.NotNil(t, stranded)
	require.Equal(t, metav1.ConditionFalse, stranded.Status)
	require.Equal(t, reasonTrainersEnded, stranded.Reason)
}

// TestAnEditedJobsOldAggregatorStrandsNoTrainer: after a spec edit the old aggregator, which
// succeeded long ago, is being replaced; its trainers are not stranded but about to be replaced too.
func TestAnEditedJobsOldAggregatorStrandsNoTrainer(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	f.setPhase("fl-train-0", corev1.PodRunning)
	f.setPhase("fl-train-1", corev1.PodRunning)
	f.setPhase("fl-aggregation", corev1.PodSucceeded, corev1.ContainerStatus{Name: "aggregator", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now.Add(-time.Hour))}}})
	f.updateJob(func(job *sednav1.FederatedLearningJob) {
		job.Spec.AggregationWorker.Template.Spec.Containers[0].Image = "aggregator:v2"
	})
	f.sync()
	require.Nil(t, meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionTrainersStranded))
}
