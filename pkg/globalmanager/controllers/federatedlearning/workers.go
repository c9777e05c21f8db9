package federatedlearning

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// KindName is the API kind of the owner of the workers.
	KindName = "FederatedLearningJob"

	// workerTypeLabel is the worker type label of workers.Labels.
	workerTypeLabel = "federatedlearningjob.sedna.io/worker-type"
	// indexLabel is the index in spec.trainingWorkers of a training pod.
	indexLabel = "federatedlearningjob.sedna.io/training-index"
	// generationAnnotation is the job's generation a pod serves: a pod that ended serving an
	// earlier generation is run again (outside the spec hash, so that a running pod whose spec
	// did not change is kept and only re-marked).
	generationAnnotation = "federatedlearningjob.sedna.io/generation"

	aggregationWorkerType = "aggregation"
	trainWorkerType       = "train"

	// AggregationPort is where the aggregation worker listens and its Service forwards (upstream's
	// fixed 7363).
	AggregationPort = 7363

	// CompatAnnotation set to "false" on a job makes the aggregation worker refuse clients that
	// present no worker token (upstream's Python clients send none); any other value, or none,
	// admits them.
	CompatAnnotation = "sedna.io/federated-compat"
	// EnvAggToken holds the job's worker token in both kinds of workers: trainers present it to the
	// aggregation worker, which admits only clients that do (unless in compatibility mode).
	EnvAggToken = "SEDNA_AGG_TOKEN"
	// EnvAggCompat is "true" or "false": whether the aggregation worker admits clients without a
	// token (CompatAnnotation).
	EnvAggCompat = "SEDNA_AGG_COMPAT"
	// EnvJobUID is the job's UID in the aggregation worker: with NAMESPACE and JOB_NAME it tells a
	// checkpoint of this job from one a deleted job of the same name left at the same MODEL_URL.
	EnvJobUID = "SEDNA_JOB_UID"

	envHostIP = "SEDNA_HOST_IP"
)

// location is a URL a worker gets and the S3 credentials it needs (nil when none).
type location struct {
	url         string
	credentials *workers.S3Credentials
}

// references are what the job's workers are built from, resolved from the caches and Secrets.
type references struct {
	aggregationModel location
	// aggregationModelName is spec.aggregationWorker.model.name (MODEL_NAME of the trainers).
	aggregationModelName string
	// pretrained is the pretrained model's location, nil when the job names none.
	pretrained *location
	// datasets are the training workers' datasets, by index; names too (DATASET_NAME).
	datasets     []location
	datasetNames []string
	// aggData is the s3 transmitter's aggDataPath, nil for the websocket transmitter.
	aggData *location
}

func ownerOf(job *sednav1.FederatedLearningJob) workers.Owner {
	return workers.Owner{Object: job, Kind: KindName}
}

// AggregationPodName is the aggregation worker's pod (and WORKER_NAME): "<job>-aggregation". A
// deterministic name, unlike upstream's generateName, makes a second create fail with
// AlreadyExists, so neither a lagging cache nor a GM restart can start a second aggregator.
func AggregationPodName(jobName string) string { return jobName + "-aggregation" }

// TrainPodName is the pod (and WORKER_NAME) of spec.trainingWorkers[index]: "<job>-train-<index>".
func TrainPodName(jobName string, index int) string {
	return jobName + "-train-" + strconv.Itoa(index)
}

// compat is the value of EnvAggCompat for the job.
func compat(job *sednav1.FederatedLearningJob) string {
	if job.Annotations[CompatAnnotation] == "false" {
		return "false"
	}
	return "true"
}

// aggTokenEnv is EnvAggToken by reference to the job's worker-token Secret.
func aggTokenEnv(job *sednav1.FederatedLearningJob) corev1.EnvVar {
	env := runtime.WorkerTokenEnv(ownerOf(job))
	env.Name = EnvAggToken
	return env
}

// workerTemplate applies upstream's defaults to a worker's template: restartPolicy OnFailure when
// unset (a killed aggregator comes back in the same pod and resumes from its checkpoint) and, for
// training workers, hostNetwork with a DNS policy that still resolves the aggregation Service.
func workerTemplate(template corev1.PodTemplateSpec, hostNetwork bool) corev1.PodTemplateSpec {
	template = *template.DeepCopy()
	if template.Spec.RestartPolicy == "" {
		template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}
	if hostNetwork {
		template.Spec.HostNetwork = true
		if template.Spec.DNSPolicy == "" {
			// With the host's network a pod gets the node's resolver under ClusterFirst: AGG_IP, a
			// Service name, would not resolve without an edge mesh.
			template.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
		}
	}
	return template
}

// transmitterMounts are the s3 transmitter's AGG_DATA_PATH (written by every worker), if any.
func transmitterMounts(refs references) []workers.Mount {
	if refs.aggData == nil {
		return nil
	}
	return []workers.Mount{{URL: refs.aggData.url, EnvName: "AGG_DATA_PATH", Credentials: refs.aggData.credentials, Output: true,
		Source: "spec.transmitter.s3.aggDataPath"}}
}

func pretrainedMounts(refs references) []workers.Mount {
	if refs.pretrained == nil {
		return nil
	}
	return []workers.Mount{{URL: refs.pretrained.url, EnvName: "PRETRAINED_MODEL_URL", Credentials: refs.pretrained.credentials}}
}

// aggregationPod builds the aggregation worker. Its MODEL_URL is a write target: the aggregator
// writes the global model (and its checkpoints beside it) there, so a host path's directory is
// mounted read-write (created when missing) and an s3:// URL is given with its credentials.
func aggregationPod(job *sednav1.FederatedLearningJob, refs references) (*corev1.Pod, error) {
	transmitter := job.Spec.Transmitter.Effective()
	worker := workers.Worker{
		Template: workerTemplate(job.Spec.AggregationWorker.Template, false),
		Env: []corev1.EnvVar{
			{Name: "NAMESPACE", Value: job.Namespace},
			{Name: "WORKER_NAME", Value: AggregationPodName(job.Name)},
			{Name: "JOB_NAME", Value: job.Name},
			{Name: EnvJobUID, Value: string(job.UID)},
			{Name: "AGG_BIND_PORT", Value: strconv.Itoa(AggregationPort)},
			{Name: "PARTICIPANTS_COUNT", Value: strconv.Itoa(len(job.Spec.TrainingWorkers))},
			{Name: "TRANSMITTER", Value: string(transmitter)},
			aggTokenEnv(job),
			{Name: EnvAggCompat, Value: compat(job)},
		},
		Mounts: append(append([]workers.Mount{
			{URL: refs.aggregationModel.url, EnvName: "MODEL_URL", Credentials: refs.aggregationModel.credentials, Output: true,
				Source: fmt.Sprintf("Model %q", job.Namespace+"/"+refs.aggregationModelName)},
		}, transmitterMounts(refs)...), pretrainedMounts(refs)...),
	}
	template, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building the aggregation worker: %w", err)
	}
	return workers.NewPod(ownerOf(job), aggregationWorkerType, AggregationPodName(job.Name), template, nil)
}

// trainPod builds the training worker of spec.trainingWorkers[index], on its template's node.
func trainPod(job *sednav1.FederatedLearningJob, index int, refs references, lcServer string) (*corev1.Pod, error) {
	transmitter := job.Spec.Transmitter.Effective()
	lcEnv := workers.LCServerEnv(lcServer, envHostIP)
	var env []corev1.EnvVar
	// SEDNA_HOST_IP (when used) comes before LC_SERVER: $(VAR) only expands earlier variables.
	env = append(env, lcEnv[:len(lcEnv)-1]...)
	env = append(env,
		corev1.EnvVar{Name: "AGG_PORT", Value: strconv.Itoa(AggregationPort)},
		corev1.EnvVar{Name: "AGG_IP", Value: workers.ServiceHost(ownerOf(job), aggregationWorkerType)},
		corev1.EnvVar{Name: "WORKER_NAME", Value: TrainPodName(job.Name, index)},
		corev1.EnvVar{Name: "JOB_NAME", Value: job.Name},
		corev1.EnvVar{Name: "PARTICIPANTS_COUNT", Value: strconv.Itoa(len(job.Spec.TrainingWorkers))},
		corev1.EnvVar{Name: "NAMESPACE", Value: job.Namespace},
		corev1.EnvVar{Name: "MODEL_NAME", Value: refs.aggregationModelName},
		corev1.EnvVar{Name: "DATASET_NAME", Value: refs.datasetNames[index]},
		lcEnv[len(lcEnv)-1],
		corev1.EnvVar{Name: "TRANSMITTER", Value: string(transmitter)},
		runtime.WorkerTokenEnv(ownerOf(job)),
		aggTokenEnv(job),
	)
	// MODEL_URL keeps upstream's name but only informs: a trainer never writes the global model,
	// so it gets the Model's URL verbatim, with no mount and no credentials.
	env = append(env, corev1.EnvVar{Name: "MODEL_URL", Value: refs.aggregationModel.url})
	mounts := transmitterMounts(refs)
	mounts = append(mounts, pretrainedMounts(refs)...)
	mounts = append(mounts, workers.Mount{URL: refs.datasets[index].url, EnvName: "TRAIN_DATASET_URL", Credentials: refs.datasets[index].credentials})
	worker := workers.Worker{
		Template: workerTemplate(job.Spec.TrainingWorkers[index].Template, true),
		Env:      env,
		Mounts:   mounts,
	}
	template, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building training worker %d: %w", index, err)
	}
	return workers.NewPod(ownerOf(job), trainWorkerType, TrainPodName(job.Name, index), template,
		map[string]string{indexLabel: strconv.Itoa(index)})
}
