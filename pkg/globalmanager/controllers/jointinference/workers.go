package jointinference

import (
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// KindName is the API kind of the owner of the workers.
	KindName = "JointInferenceService"

	// workerTypeLabel is the worker type label of workers.Labels.
	workerTypeLabel = "jointinferenceservice.sedna.io/worker-type"

	cloudWorkerType = "Cloud"
	edgeWorkerType  = "Edge"
	// cloudPort is where the cloud worker serves the deep model (upstream's fixed 5000).
	cloudPort = 5000

	// envHostIP holds the node's IP so that LC_SERVER can point at the node's LC from a pod
	// without hostNetwork.
	envHostIP   = "SEDNA_HOST_IP"
	modelURLEnv = "MODEL_URL"
)

// model is what a worker needs of its Model: the URL and, for s3:// URLs, the credentials.
type model struct {
	url         string
	credentials *workers.S3Credentials
}

func ownerOf(ji *sednav1.JointInferenceService) workers.Owner {
	return workers.Owner{Object: ji, Kind: KindName}
}

// workerName is the cloud worker's identity (edge workers take their pod's name). Upstream appends a random suffix each time it
// builds the template; a suffix derived from the service's UID stays the same on every sync, so
// rebuilding the template does not change it and does not roll the workers.
func workerName(ji *sednav1.JointInferenceService, prefix string) string {
	return prefix + "-" + workers.StableSuffix(ownerOf(ji), 5)
}

// lcServerEnv gives edge workers their node's LC (workers.LCServerEnv: the node's IP from the
// downward API unless an operator configured another host).
func lcServerEnv(configured string) []corev1.EnvVar {
	return workers.LCServerEnv(configured, envHostIP)
}

// hemParameters encodes the mining parameters as upstream's JSON array [{"key":..,"value":..}],
// in the order the user wrote them so that the template is the same on every sync.
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

func cloudWorker(ji *sednav1.JointInferenceService, cloudModel model) workers.Worker {
	return workers.Worker{
		Template: ji.Spec.CloudWorker.Template,
		Env: []corev1.EnvVar{
			{Name: "BIG_MODEL_BIND_PORT", Value: strconv.Itoa(cloudPort)},
			{Name: "NAMESPACE", Value: ji.Namespace},
			{Name: "SERVICE_NAME", Value: ji.Name},
			{Name: "WORKER_NAME", Value: workerName(ji, "cloudworker")},
			// Upstream sets no JOB_NAME, so its library serves /sedna/predict and reports for a
			// service named "sedna". Both workers get the service's name: the predict path still
			// matches and reports name the right owner.
			{Name: "JOB_NAME", Value: ji.Name},
			runtime.WorkerTokenEnv(ownerOf(ji)),
		},
		Mounts: []workers.Mount{{URL: cloudModel.url, EnvName: modelURLEnv, Credentials: cloudModel.credentials}},
	}
}

func edgeWorker(ji *sednav1.JointInferenceService, edgeModel model, lcServer string) (workers.Worker, error) {
	params, err := hemParameters(ji.Spec.EdgeWorker.HardExampleMining.Parameters)
	if err != nil {
		return workers.Worker{}, err
	}
	lcEnv := lcServerEnv(lcServer)
	var env []corev1.EnvVar
	// SEDNA_HOST_IP (when used) comes before LC_SERVER: $(VAR) only expands earlier variables.
	env = append(env, lcEnv[:len(lcEnv)-1]...)
	env = append(env,
		corev1.EnvVar{Name: "BIG_MODEL_IP", Value: workers.ServiceHost(ownerOf(ji), cloudWorkerType)},
		corev1.EnvVar{Name: "BIG_MODEL_PORT", Value: strconv.Itoa(cloudPort)},
		corev1.EnvVar{Name: "HEM_NAME", Value: ji.Spec.EdgeWorker.HardExampleMining.Name},
		corev1.EnvVar{Name: "HEM_PARAMETERS", Value: params},
		lcEnv[len(lcEnv)-1],
		corev1.EnvVar{Name: "NAMESPACE", Value: ji.Namespace},
		corev1.EnvVar{Name: "SERVICE_NAME", Value: ji.Name},
		// Each edge replica reports its own counters: the pod's name tells them apart (upstream
		// gives every replica the same name, so their reports overwrote each other).
		workers.PodNameEnv("WORKER_NAME"),
		corev1.EnvVar{Name: "JOB_NAME", Value: ji.Name},
		runtime.WorkerTokenEnv(ownerOf(ji)),
	)
	return workers.Worker{
		Template: ji.Spec.EdgeWorker.Template,
		Env:      env,
		Mounts:   []workers.Mount{{URL: edgeModel.url, EnvName: modelURLEnv, Credentials: edgeModel.credentials}},
	}, nil
}

// desiredDeployment builds the Deployment of one worker; JI has no replicas field, so it is one
// replica unless an HPA scales it.
func desiredDeployment(ji *sednav1.JointInferenceService, workerType string, worker workers.Worker) (*appsv1.Deployment, error) {
	template, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building the %s worker: %w", workerType, err)
	}
	return workers.NewDeployment(ownerOf(ji), workerType, nil, template)
}
