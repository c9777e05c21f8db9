// Package reid reconciles ReidJobs: one re-identification pod at a time (attempts up to
// backoffLimit), completing or failing like a Kubernetes Job, and the Service "<job>-reid" on port
// 5000, which upstream's worker library expects (reid-reid:5000 for a job named "reid") and
// upstream's GM never made. The controller is the shared multi-edge one (workload).
package reid

import (
	"context"

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
	Name = "Reid"
	// KindName is the API kind.
	KindName = "ReidJob"
	// WorkerType is the worker type of the job's pod and Service.
	WorkerType = "reid"
	// Port is where the re-identification worker serves (upstream's 5000).
	Port = 5000
)

// Kind is the job kind as the shared controller handles it.
var Kind = workload.Kind[*sednav1.ReidJob]{
	Name: Name, Metrics: "reid", KindName: KindName, Description: "reid job",
	Informer: func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, workload.Lister[*sednav1.ReidJob]) {
		i := f.Sedna().V1alpha1().ReidJobs()
		l := i.Lister()
		return i.Informer(), workload.Lister[*sednav1.ReidJob]{
			Get:  func(ns, name string) (*sednav1.ReidJob, error) { return l.ReidJobs(ns).Get(name) },
			List: l.List,
		}
	},
	ModelNames: func(*sednav1.ReidJob) []string { return nil },
	Build:      Build,
	SetStatus: func(job *sednav1.ReidJob, in workload.StatusInput) {
		runtime.SetJobStatus(&job.Status, job.Generation, in.Now, in.Block, runtime.ProgressOf(in.Pods, job.Spec.BackoffLimit))
	},
	Conditions: func(job *sednav1.ReidJob) []metav1.Condition { return job.Status.Conditions },
	Status:     func(job *sednav1.ReidJob) any { return &job.Status },
	UpdateStatus: func(ctx context.Context, client sednaclientset.Interface, job *sednav1.ReidJob) error {
		_, err := client.SednaV1alpha1().ReidJobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		return err
	},
	TemplateNodes: func(job *sednav1.ReidJob) []string { return workload.NodeNames(job.Spec.Template) },
	TakesReports:  true,
}

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	return workload.New(Kind, deps)
}

// Build computes the job's children: the Service on port 5000 and the pod of the current attempt
// with upstream's env (WORKER_NAME, JOB_NAME, NAMESPACE, LC_SERVER, KAFKA_ENABLED when
// kafkaSupport) plus the worker token.
func Build(in workload.BuildInput[*sednav1.ReidJob]) (runtime.Desired, error) {
	job := in.Object
	lc := workload.LCEnv(in.LCServer)
	env := append([]corev1.EnvVar{}, lc[:len(lc)-1]...)
	env = append(env,
		workers.PodNameEnv(workload.EnvWorkerName),
		corev1.EnvVar{Name: workload.EnvJobName, Value: job.Name},
		corev1.EnvVar{Name: workload.EnvNamespace, Value: job.Namespace},
		lc[len(lc)-1],
	)
	env = append(env, workload.KafkaEnv(job.Spec.KafkaSupport)...)
	env = append(env, runtime.WorkerTokenEnv(in.Owner))
	pods, err := workload.JobPods(in.Owner, WorkerType, &job.Status, job.Spec.BackoffLimit, in.Pods, workers.Worker{
		Template: job.Spec.Template, Env: env,
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
