// Package videoanalytics reconciles VideoAnalyticsJobs: one detection/tracking pod at a time
// (attempts up to backoffLimit) and the Service "<job>-videoanalytics" on port 4000, completing or
// failing like a Kubernetes Job. The controller is the shared multi-edge one (workload).
package videoanalytics

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// Name is the feature's name in the registry.
	Name = "VideoAnalytics"
	// KindName is the API kind.
	KindName = "VideoAnalyticsJob"
	// WorkerType is the worker type of the job's pod and Service.
	WorkerType = "videoanalytics"
	// Port is where the detection worker serves (upstream's 4000).
	Port = 4000
)

// Kind is the job kind as the shared controller handles it.
var Kind = workload.Kind[*sednav1.VideoAnalyticsJob]{
	Name: Name, Metrics: "videoanalytics", KindName: KindName, Description: "video analytics job",
	Informer: func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, workload.Lister[*sednav1.VideoAnalyticsJob]) {
		i := f.Sedna().V1alpha1().VideoAnalyticsJobs()
		l := i.Lister()
		return i.Informer(), workload.Lister[*sednav1.VideoAnalyticsJob]{
			Get:  func(ns, name string) (*sednav1.VideoAnalyticsJob, error) { return l.VideoAnalyticsJobs(ns).Get(name) },
			List: l.List,
		}
	},
	ModelNames: func(job *sednav1.VideoAnalyticsJob) []string { return []string{job.Spec.Model.Name} },
	Build:      Build,
	SetStatus: func(job *sednav1.VideoAnalyticsJob, in workload.StatusInput) {
		runtime.SetJobStatus(&job.Status, job.Generation, in.Now, in.Block, runtime.ProgressOf(in.Pods, job.Spec.BackoffLimit))
	},
	Conditions: func(job *sednav1.VideoAnalyticsJob) []metav1.Condition { return job.Status.Conditions },
	Status:     func(job *sednav1.VideoAnalyticsJob) any { return &job.Status },
	UpdateStatus: func(ctx context.Context, client sednaclientset.Interface, job *sednav1.VideoAnalyticsJob) error {
		_, err := client.SednaV1alpha1().VideoAnalyticsJobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		return err
	},
	TemplateNodes: func(job *sednav1.VideoAnalyticsJob) []string { return workload.NodeNames(job.Spec.Template) },
	TakesReports:  true,
}

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	return workload.New(Kind, deps)
}

// Build computes the job's children: the Service on port 4000 and the pod of the current
// attempt, with upstream's env (WORKER_NAME, JOB_NAME, NAMESPACE, MODEL_NAME, LC_SERVER,
// KAFKA_ENABLED when kafkaSupport, MODEL_URL) plus the worker token.
func Build(in workload.BuildInput[*sednav1.VideoAnalyticsJob]) (runtime.Desired, error) {
	job := in.Object
	model, ok := in.Models[job.Spec.Model.Name]
	if !ok {
		return runtime.Desired{}, fmt.Errorf("spec.model.name: model %q not resolved", job.Spec.Model.Name)
	}
	lc := workload.LCEnv(in.LCServer)
	env := append([]corev1.EnvVar{}, lc[:len(lc)-1]...)
	env = append(env,
		workers.PodNameEnv(workload.EnvWorkerName),
		corev1.EnvVar{Name: workload.EnvJobName, Value: job.Name},
		corev1.EnvVar{Name: workload.EnvNamespace, Value: job.Namespace},
		corev1.EnvVar{Name: workload.EnvModelName, Value: model.Name},
		lc[len(lc)-1],
	)
	env = append(env, workload.KafkaEnv(job.Spec.KafkaSupport)...)
	env = append(env, runtime.WorkerTokenEnv(in.Owner))
	pods, err := workload.JobPods(in.Owner, WorkerType, &job.Status, job.Spec.BackoffLimit, in.Pods, workers.Worker{
		Template: job.Spec.Template, Env: env, Mounts: []workers.Mount{workload.ModelMount(model)},
	})
	if err != nil {
		return runtime.Desired{}, err
	}
	service, err := workers.NewService(in.Owner, WorkerType, Port)
	if err != nil {
		return runtime.Desired{}, err
	}
	return runtime.Desired{Services: []*corev1.Service{service}, Pods: pods}, nil
}
