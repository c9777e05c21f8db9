package lifelonglearning

import (
	"path"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// KindName is the API kind of the owner of the workers.
	KindName = "LifelongLearningJob"

	// Upstream's worker types; pod names and labels use them lowercased.
	trainWorkerType     = "Train"
	evalWorkerType      = "Eval"
	inferenceWorkerType = "inference"

	envHostIP = "SEDNA_HOST_IP"
	// EnvKBToken is the env var of the KB's bearer token (from knowledgeBaseServer.tokenSecret).
	EnvKBToken = "SEDNA_KB_TOKEN"
	// KBTokenKey is the key of the token in that Secret.
	KBTokenKey = "token"
	// deployIndex is where, below outputDir, the LC puts the deployed KB index (upstream's).
	deployIndex = "deploy/index.pkl"
)

// workerTypeLabel is the worker type label of workers.Labels.
var workerTypeLabel = staged.WorkerTypeLabel(KindName)

func ownerOf(job *sednav1.LifelongLearningJob) workers.Owner {
	return workers.Owner{Object: job, Kind: KindName}
}

// location is a URL a worker gets and the S3 credentials it needs (nil for host paths).
type location struct {
	url         string
	credentials *workers.S3Credentials
}

// settings are the controller-wide values every worker gets.
type settings struct {
	lcServer, kbServer, kbSecret string
}

// commonEnv is what every LL worker gets first: the LC's and KB's addresses, the report identity,
// the job's worker token and, when configured, the KB's token (both by reference). The pod's own
// name is its WORKER_NAME.
func commonEnv(job *sednav1.LifelongLearningJob, s settings) []corev1.EnvVar {
	lcEnv := workers.LCServerEnv(s.lcServer, envHostIP)
	env := append([]corev1.EnvVar{}, lcEnv[:len(lcEnv)-1]...)
	env = append(env,
		corev1.EnvVar{Name: "NAMESPACE", Value: job.Namespace},
		corev1.EnvVar{Name: "JOB_NAME", Value: job.Name},
		workers.PodNameEnv("WORKER_NAME"),
		lcEnv[len(lcEnv)-1],
		corev1.EnvVar{Name: "KB_SERVER", Value: s.kbServer},
		runtime.WorkerTokenEnv(ownerOf(job)),
	)
	if s.kbSecret != "" {
		optional := true
		env = append(env, corev1.EnvVar{Name: EnvKBToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: s.kbSecret}, Key: KBTokenKey, Optional: &optional,
		}}})
	}
	return env
}

// asDir gives a host-path directory a trailing "/": a host path is mounted from its parent unless
// it ends in "/", and an output directory must be mounted itself, not its parent.
func asDir(u string) string {
	if strings.HasPrefix(u, "/") && !strings.HasSuffix(u, "/") {
		return u + "/"
	}
	return u
}

// trainInput is what the train pod of a round is given.
type trainInput struct {
	round           int32
	attempt         int
	cloudIndex      string // "" before the first training completed
	outputDir       location
	trainData       location
	originalDataset location
}

func trainPod(job *sednav1.LifelongLearningJob, in trainInput, s settings) (*corev1.Pod, error) {
	env := commonEnv(job, s)
	env = append(env, corev1.EnvVar{Name: "HAS_COMPLETED_INITIAL_TRAINING", Value: strconv.FormatBool(in.cloudIndex != "")})
	if in.cloudIndex != "" {
		env = append(env, corev1.EnvVar{Name: "CLOUD_KB_INDEX", Value: in.cloudIndex})
	}
	worker := workers.Worker{
		Template: staged.StageTemplate(job.Spec.TrainSpec.Template),
		Env:      env,
		Mounts: []workers.Mount{
			{URL: asDir(in.outputDir.url), EnvName: "OUTPUT_URL", Credentials: in.outputDir.credentials, Output: true},
			{URL: in.trainData.url, EnvName: "TRAIN_DATASET_URL", Credentials: in.trainData.credentials},
			{URL: in.originalDataset.url, EnvName: "ORIGINAL_DATASET_URL", Credentials: in.originalDataset.credentials},
		},
	}
	return staged.NewStagePod(ownerOf(job), trainWorkerType, in.round, in.attempt, worker)
}

// evalInput is what the eval pod of a round is given.
type evalInput struct {
	round           int32
	attempt         int
	models          []location
	outputDir       location
	testData        location
	originalDataset location
}

func evalPod(job *sednav1.LifelongLearningJob, in evalInput, s settings) (*corev1.Pod, error) {
	urls := make([]string, len(in.models))
	var credentials *workers.S3Credentials
	for i, m := range in.models {
		urls[i] = m.url
		if m.credentials != nil {
			credentials = m.credentials
		}
	}
	worker := workers.Worker{
		Template: staged.StageTemplate(job.Spec.EvalSpec.Template),
		Env:      commonEnv(job, s),
		Mounts: []workers.Mount{
			// The library fetches the KB index itself (from the KB or the output directory).
			{URLs: urls, EnvName: "MODEL_URLS", Credentials: credentials, Output: true},
			{URL: asDir(in.outputDir.url), EnvName: "OUTPUT_URL", Credentials: in.outputDir.credentials, Output: true},
			{URL: in.testData.url, EnvName: "TEST_DATASET_URL", Credentials: in.testData.credentials},
			{URL: in.originalDataset.url, EnvName: "ORIGINAL_DATASET_URL", Credentials: in.originalDataset.credentials},
		},
	}
	return staged.NewStagePod(ownerOf(job), evalWorkerType, in.round, in.attempt, worker)
}

// deployIndexURL is <outputDir>/deploy/index.pkl, where the LC puts the deployed KB index.
func deployIndexURL(outputDir string) string {
	if strings.HasPrefix(outputDir, "/") {
		return path.Join(outputDir, deployIndex)
	}
	return strings.TrimSuffix(outputDir, "/") + "/" + deployIndex
}

// inferenceDeployment is the inference worker: a Deployment "<job>-deployment-inference" with one
// replica rather than upstream's bare pod, so a lost pod comes back without GM; a newly deployed
// round (deployedRound) changes its template, which rolls the worker onto the new index.
func inferenceDeployment(job *sednav1.LifelongLearningJob, output location, s settings, deployedRound int32) (*appsv1.Deployment, error) {
	template := *job.Spec.DeploySpec.Template.DeepCopy()
	staged.MarkDeployedRound(&template, deployedRound)
	worker := workers.Worker{
		Template: template,
		Env:      commonEnv(job, s),
		Mounts: []workers.Mount{
			{URL: asDir(output.url), EnvName: "OUTPUT_URL", Credentials: output.credentials, Output: true},
			{URL: deployIndexURL(output.url), EnvName: "MODEL_URLS", Credentials: output.credentials, Output: true},
		},
	}
	built, err := worker.PodTemplate()
	if err != nil {
		return nil, err
	}
	return workers.NewDeployment(ownerOf(job), inferenceWorkerType, nil, built)
}

func inferenceDeploymentName(job *sednav1.LifelongLearningJob) string {
	return workers.DeploymentName(ownerOf(job), inferenceWorkerType)
}
