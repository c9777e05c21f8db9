package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Worker types and ports of the object search and tracking services (contract §2.10).
const (
	ReidWorkerType     = "reidworker"
	UserWorkerType     = "userworker"
	TrackingWorkerType = "trackingworker"
	ReidWorkerPort     = 9378
	UserWorkerPort     = 9379
)

// Readiness condition types of the groups of the object search and tracking services.
const (
	ConditionReidWorkersReady     = "ReidWorkersReady"
	ConditionUserWorkerReady      = "UserWorkerReady"
	ConditionTrackingWorkersReady = "TrackingWorkersReady"
)

// ReidWorkers are the re-identification Deployment "<name>-deployment-reidworker" (replicas and
// template of reidWorkers, no env, as upstream) and its Service "<name>-reidworker" on 9378.
func ReidWorkers(owner workers.Owner, spec sednav1.ReidWorkers) (runtime.DesiredDeployment, *corev1.Service, error) {
	deployment, err := Deployment(owner, ReidWorkerType, spec.Replicas, workers.Worker{Template: spec.Template})
	if err != nil {
		return runtime.DesiredDeployment{}, nil, err
	}
	service, err := workers.NewService(owner, ReidWorkerType, ReidWorkerPort)
	return deployment, service, err
}

// TrackingPodName is "<name>-trackingworker-<index>".
func TrackingPodName(owner workers.Owner, index int) string {
	return fmt.Sprintf("%s-%s-%d", owner.GetName(), TrackingWorkerType, index)
}

// TrackingWorkers are one pod per tracking worker, "<name>-trackingworker-<index>", with env
// NAMESPACE, SERVICE_NAME, WORKER_NAME (the pod's name), EDGEMESH_URL (the reid workers) and,
// when userWorkerURL is set, USERWORKER_URL, plus the worker token. They are replaced like a
// ReplicaSet's pods: recreated when deleted or ended, and when the spec changes.
func TrackingWorkers(owner workers.Owner, trackers []sednav1.TrackingWorker, userWorkerURL string) ([]runtime.DesiredPod, error) {
	var pods []runtime.DesiredPod
	for i, t := range trackers {
		env := []corev1.EnvVar{
			{Name: EnvNamespace, Value: owner.GetNamespace()},
			{Name: EnvServiceName, Value: owner.GetName()},
			workers.PodNameEnv(EnvWorkerName),
		}
		if userWorkerURL != "" {
			env = append(env, corev1.EnvVar{Name: EnvUserWorkerURL, Value: userWorkerURL})
		}
		env = append(env,
			corev1.EnvVar{Name: EnvEdgeMeshURL, Value: ServiceURL(owner, ReidWorkerType, ReidWorkerPort)},
			runtime.WorkerTokenEnv(owner),
		)
		template, err := workers.Worker{Template: t.Template, Env: env}.PodTemplate()
		if err != nil {
			return nil, fmt.Errorf("spec.trackingWorkers[%d]: %w", i, err)
		}
		pod, err := workers.NewPod(owner, TrackingWorkerType, TrackingPodName(owner, i), template, nil)
		if err != nil {
			return nil, err
		}
		pods = append(pods, runtime.DesiredPod{Pod: pod, Replace: true})
	}
	return pods, nil
}
