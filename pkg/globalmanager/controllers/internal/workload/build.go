package workload

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Env names the multi-edge workers get (contract §2.4, §2.9, §2.10).
const (
	EnvWorkerName    = "WORKER_NAME"
	EnvNamespace     = "NAMESPACE"
	EnvJobName       = "JOB_NAME"
	EnvServiceName   = "SERVICE_NAME"
	EnvKafkaEnabled  = "KAFKA_ENABLED"
	EnvModelURL      = "MODEL_URL"
	EnvModelName     = "MODEL_NAME"
	EnvUserWorkerURL = "USERWORKER_URL"
	EnvEdgeMeshURL   = "EDGEMESH_URL"
	// EnvHostIP holds the node's IP so that LC_SERVER can reach the node's LC from a pod without
	// hostNetwork (workers.LCServerEnv).
	EnvHostIP = "SEDNA_HOST_IP"
)

// LCEnv is SEDNA_HOST_IP (when the configured LC is local) and LC_SERVER, in that order: $(VAR)
// only expands variables defined earlier.
func LCEnv(lcServer string) []corev1.EnvVar { return workers.LCServerEnv(lcServer, EnvHostIP) }

// KafkaEnv is KAFKA_ENABLED=true when the spec asks for Kafka, nothing otherwise (upstream sets
// it only then).
func KafkaEnv(kafka bool) []corev1.EnvVar {
	if !kafka {
		return nil
	}
	return []corev1.EnvVar{{Name: EnvKafkaEnabled, Value: "true"}}
}

// ModelMount is the Model given to the worker in MODEL_URL (downloaded by the initializer or
// mounted from the host).
func ModelMount(m Model) workers.Mount {
	return workers.Mount{URL: m.URL, EnvName: EnvModelURL, Credentials: m.Credentials, Source: fmt.Sprintf("Model %q", m.Name)}
}

// JobPodName is the deterministic name of a job's attempt: "<job>-<workerType>-<attempt>".
func JobPodName(owner workers.Owner, workerType string, attempt int) string {
	return fmt.Sprintf("%s-%s-%d", owner.GetName(), strings.ToLower(workerType), attempt)
}

// JobPods is the pod of a pod-based job's current attempt (none once the job finished or every
// attempt is used), built from worker. The template's restart policy is kept; an empty one
// becomes Never, as a Kubernetes Job needs to see a pod end (upstream left it empty, which the
// API server defaults to Always: the pod never ended and the job never completed).
func JobPods(owner workers.Owner, workerType string, status *sednav1.JobStatus, backoffLimit *int32, pods []*corev1.Pod,
	worker workers.Worker) ([]runtime.DesiredPod, error) {
	if runtime.JobFinished(status) {
		return nil, nil
	}
	progress := runtime.ProgressOf(pods, backoffLimit)
	if progress.Attempt == 0 {
		return nil, nil
	}
	if worker.Template.Spec.RestartPolicy == "" {
		worker.Template = *worker.Template.DeepCopy()
		worker.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	template, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building the %s worker: %w", workerType, err)
	}
	pod, err := workers.NewPod(owner, workerType, JobPodName(owner, workerType, progress.Attempt), template, nil)
	if err != nil {
		return nil, err
	}
	return []runtime.DesiredPod{{Pod: pod}}, nil
}

// Deployment is the Deployment of workerType from a user's DeploymentSpec: only replicas (nil →
// 1) and the template are taken, as upstream.
func Deployment(owner workers.Owner, workerType string, replicas *int32, worker workers.Worker) (runtime.DesiredDeployment, error) {
	template, err := worker.PodTemplate()
	if err != nil {
		return runtime.DesiredDeployment{}, fmt.Errorf("building the %s worker: %w", workerType, err)
	}
	d, err := workers.NewDeployment(owner, workerType, replicas, template)
	return runtime.DesiredDeployment{Deployment: d}, err
}

// Replicas is a Deployment spec's replicas, 1 when unset.
func Replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// ServiceURL is "<service>.<namespace>:<port>", as upstream's workers are given a peer.
func ServiceURL(owner workers.Owner, workerType string, port int) string {
	return workers.ServiceHost(owner, workerType) + ":" + strconv.Itoa(port)
}

// PodsOf returns the pods carrying worker type workerType.
func PodsOf(owner workers.Owner, pods []*corev1.Pod, workerType string) []*corev1.Pod {
	label := strings.ToLower(owner.Kind) + ".sedna.io/worker-type"
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Labels[label] == strings.ToLower(workerType) {
			out = append(out, p)
		}
	}
	return out
}

// DeploymentGroup is the readiness group of one worker Deployment.
func DeploymentGroup(owner workers.Owner, in StatusInput, workerType, condition string, want int32) runtime.GroupReadiness {
	return runtime.ReadinessOf(runtime.WorkerGroup{Name: strings.ToLower(workerType), Condition: condition,
		Deployment: in.Deployments.Deployments[workers.DeploymentName(owner, workerType)], Want: want})
}

// PodGroup is the readiness group of the bare pods of workerType.
func PodGroup(owner workers.Owner, in StatusInput, workerType, condition string, want int32) runtime.GroupReadiness {
	return runtime.ReadinessOf(runtime.WorkerGroup{Name: strings.ToLower(workerType), Condition: condition,
		Pods: PodsOf(owner, in.Pods, workerType), Want: want})
}

// NodeNames are the nodeNames of templates.
func NodeNames(templates ...corev1.PodTemplateSpec) []string {
	var nodes []string
	for _, t := range templates {
		if t.Spec.NodeName != "" {
			nodes = append(nodes, t.Spec.NodeName)
		}
	}
	return nodes
}
