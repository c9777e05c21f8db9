package incrementallearning

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// KindName is the API kind of the owner of the workers.
	KindName = "IncrementalLearningJob"

	trainWorkerType     = "train"
	evalWorkerType      = "eval"
	inferenceWorkerType = "inference"

	// deployedRoundAnnotation, on the inference worker's pod template, is the last round whose
	// model was copied over the deploy Model's URL (staged.DeployedRoundAnnotation).
	deployedRoundAnnotation = staged.DeployedRoundAnnotation

	// HotUpdateAnnotation is the job annotation naming the host path of the inference worker's
	// model_config.json, which the LC writes (the LC's HotUpdateAnnotation).
	HotUpdateAnnotation = "sedna.io/model-hot-update-config"
	// HotUpdateRoot is the host directory of the hot-update directories (the LC's default).
	HotUpdateRoot      = "/var/lib/sedna/model-hot-update"
	hotUpdateMountPath = "/model-hot-update"
	hotUpdateVolume    = "sedna-model-hot-update-volume"
	hotUpdateConfig    = "model_config.json"

	envHostIP = "SEDNA_HOST_IP"
)

// roundLabel and attemptLabel tell the stage pods of a job apart: the round they serve and which
// try of that round's stage they are (the shared stage pods' labels, package staged).
var (
	roundLabel   = staged.RoundLabel(KindName)
	attemptLabel = staged.AttemptLabel(KindName)
	// workerTypeLabel is the worker type label of workers.Labels.
	workerTypeLabel = staged.WorkerTypeLabel(KindName)
)

func ownerOf(job *sednav1.IncrementalLearningJob) workers.Owner {
	return workers.Owner{Object: job, Kind: KindName}
}

// hotUpdateHostDir is upstream's /var/lib/sedna/model-hot-update/<ns>/incrementallearningjob/<name>/,
// lower case, which the LC also derives when the annotation is absent.
func hotUpdateHostDir(job *sednav1.IncrementalLearningJob) string {
	return strings.ToLower(path.Join(HotUpdateRoot, job.Namespace, strings.ToLower(KindName), job.Name)) + "/"
}

// location is a URL a worker gets and the S3 credentials it needs (nil for host paths).
type location struct {
	url         string
	credentials *workers.S3Credentials
}

// commonEnv is what every IL worker gets first: the LC's address, the report identity and the
// job's worker token (from its Secret). The pod's own name is its WORKER_NAME: unique per pod and
// per try, and stable in the template.
func commonEnv(job *sednav1.IncrementalLearningJob, lcServer string) []corev1.EnvVar {
	lcEnv := workers.LCServerEnv(lcServer, envHostIP)
	env := append([]corev1.EnvVar{}, lcEnv[:len(lcEnv)-1]...)
	return append(env,
		corev1.EnvVar{Name: "NAMESPACE", Value: job.Namespace},
		corev1.EnvVar{Name: "JOB_NAME", Value: job.Name},
		workers.PodNameEnv("WORKER_NAME"),
		lcEnv[len(lcEnv)-1],
		runtime.WorkerTokenEnv(ownerOf(job)),
	)
}

// stageTemplate is the shared stage template (restart policy Never, see staged.StageTemplate).
// hostNetwork is NOT forced as upstream does: workers reach their LC at the node's IP (LC_SERVER
// from the downward API), so they need no host network, and a user who wants it sets it in the
// template.
func stageTemplate(template corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return staged.StageTemplate(template)
}

// trainInput is what the train pod of a round is given.
type trainInput struct {
	round           int32
	attempt         int
	baseModel       location
	outputDir       location
	trainData       location
	originalDataset location
}

func trainPod(job *sednav1.IncrementalLearningJob, in trainInput, lcServer string) (*corev1.Pod, error) {
	worker := workers.Worker{
		Template: stageTemplate(job.Spec.TrainSpec.Template),
		Env:      commonEnv(job, lcServer),
		Mounts: []workers.Mount{
			{URL: in.baseModel.url, EnvName: "BASE_MODEL_URL", Credentials: in.baseModel.credentials},
			{URL: in.outputDir.url, EnvName: "MODEL_URL", Credentials: in.outputDir.credentials, Output: true},
			{URL: in.trainData.url, EnvName: "TRAIN_DATASET_URL", Credentials: in.trainData.credentials},
			{URL: in.originalDataset.url, EnvName: "ORIGINAL_DATASET_URL", Credentials: in.originalDataset.credentials},
		},
	}
	return stagePod(job, trainWorkerType, in.round, in.attempt, worker)
}

// evalInput is what the eval pod of a round is given.
type evalInput struct {
	round           int32
	attempt         int
	models          []location
	testData        location
	originalDataset location
}

func evalPod(job *sednav1.IncrementalLearningJob, in evalInput, lcServer string) (*corev1.Pod, error) {
	urls := make([]string, len(in.models))
	var credentials *workers.S3Credentials
	for i, m := range in.models {
		urls[i] = m.url
		if m.credentials != nil {
			credentials = m.credentials
		}
	}
	worker := workers.Worker{
		Template: stageTemplate(job.Spec.EvalSpec.Template),
		Env:      commonEnv(job, lcServer),
		Mounts: []workers.Mount{
			{URLs: urls, EnvName: "MODEL_URLS", Credentials: credentials},
			{URL: in.testData.url, EnvName: "TEST_DATASET_URL", Credentials: in.testData.credentials},
			{URL: in.originalDataset.url, EnvName: "ORIGINAL_DATASET_URL", Credentials: in.originalDataset.credentials},
		},
	}
	return stagePod(job, evalWorkerType, in.round, in.attempt, worker)
}

func stagePod(job *sednav1.IncrementalLearningJob, workerType string, round int32, attempt int, worker workers.Worker) (*corev1.Pod, error) {
	return staged.NewStagePod(ownerOf(job), workerType, round, attempt, worker)
}

// hemParameters encodes the mining parameters as upstream's JSON array [{"key":..,"value":..}].
func hemParameters(params []sednav1.ParaSpec) (string, error) {
	if params == nil {
		params = []sednav1.ParaSpec{}
	}
	data, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("encoding the hard example mining parameters: %w", err)
	}
	return string(data), nil
}

// inferenceDeployment is the inference worker. It is a Deployment "<job>-deployment-inference"
// with one replica rather than upstream's bare pod: a pod deleted, evicted or lost with its node
// comes back without GM's help, and a restart for a new model is a rollout of the template.
// deployedRound > 0 (without hot update) marks the template with the last deployed round.
func inferenceDeployment(job *sednav1.IncrementalLearningJob, deployModel location, lcServer string, deployedRound int32) (*appsv1.Deployment, error) {
	deploy := job.Spec.DeploySpec
	params, err := hemParameters(deploy.HardExampleMining.Parameters)
	if err != nil {
		return nil, err
	}
	env := commonEnv(job, lcServer)
	env = append(env,
		corev1.EnvVar{Name: "HEM_NAME", Value: deploy.HardExampleMining.Name},
		corev1.EnvVar{Name: "HEM_PARAMETERS", Value: params},
	)
	template := *deploy.Template.DeepCopy()
	if deploy.Model.HotUpdateEnabled {
		period := deploy.Model.PollPeriodSeconds
		if period <= 0 {
			period = 60 // the CRD's default, for objects that bypassed defaulting
		}
		env = append(env,
			corev1.EnvVar{Name: "MODEL_HOT_UPDATE", Value: "true"},
			corev1.EnvVar{Name: "MODEL_POLL_PERIOD_SECONDS", Value: strconv.FormatInt(period, 10)},
			corev1.EnvVar{Name: "MODEL_HOT_UPDATE_CONFIG", Value: hotUpdateMountPath + "/" + hotUpdateConfig},
		)
		template.Spec.Volumes = append(template.Spec.Volumes, corev1.Volume{Name: hotUpdateVolume, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: hotUpdateHostDir(job), Type: ptr.To(corev1.HostPathDirectoryOrCreate)},
		}})
		for i := range template.Spec.Containers {
			template.Spec.Containers[i].VolumeMounts = append(template.Spec.Containers[i].VolumeMounts,
				corev1.VolumeMount{Name: hotUpdateVolume, MountPath: hotUpdateMountPath})
		}
	} else {
		staged.MarkDeployedRound(&template, deployedRound)
	}
	worker := workers.Worker{
		Template: template,
		Env:      env,
		Mounts:   []workers.Mount{{URL: deployModel.url, EnvName: "MODEL_URL", Credentials: deployModel.credentials}},
	}
	built, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building the inference worker: %w", err)
	}
	return workers.NewDeployment(ownerOf(job), inferenceWorkerType, nil, built)
}
