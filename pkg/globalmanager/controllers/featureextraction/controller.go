// Package featureextraction reconciles FeatureExtractionServices: the Deployment
// "<name>-deployment-fe" from the inline DeploymentSpec and the Service "<name>-fe" on port 6000.
// Its status counts the one Deployment it makes (upstream counted three and marked every
// service Failed on its second sync); the workers' reports become status.metrics. The controller
// is the shared multi-edge one (workload).
package featureextraction

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
	Name = "FeatureExtraction"
	// KindName is the API kind.
	KindName = "FeatureExtractionService"
	// WorkerType is the worker type of the Deployment and Service.
	WorkerType = "fe"
	// Port is where the feature-extraction workers serve (upstream's 6000).
	Port = 6000
)

// Kind is the service kind as the shared controller handles it.
var Kind = workload.Kind[*sednav1.FeatureExtractionService]{
	Name: Name, Metrics: "featureextraction", KindName: KindName, Description: "feature extraction service",
	Informer: func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, workload.Lister[*sednav1.FeatureExtractionService]) {
		i := f.Sedna().V1alpha1().FeatureExtractionServices()
		l := i.Lister()
		return i.Informer(), workload.Lister[*sednav1.FeatureExtractionService]{
			Get: func(ns, name string) (*sednav1.FeatureExtractionService, error) {
				return l.FeatureExtractionServices(ns).Get(name)
			},
			List: l.List,
		}
	},
	ModelNames: func(s *sednav1.FeatureExtractionService) []string { return []string{s.Spec.Model.Name} },
	Build:      Build,
	SetStatus: func(s *sednav1.FeatureExtractionService, in workload.StatusInput) {
		owner := workers.Owner{Object: s, Kind: KindName}
		runtime.SetServiceStatus(&s.Status.ServiceStatus, s.Generation, in.Now, in.Block, []runtime.GroupReadiness{
			workload.DeploymentGroup(owner, in, WorkerType, "", workload.Replicas(s.Spec.Replicas)),
		})
		if in.Metrics != nil {
			s.Status.Metrics = in.Metrics
		}
	},
	Conditions: func(s *sednav1.FeatureExtractionService) []metav1.Condition { return s.Status.Conditions },
	Status:     func(s *sednav1.FeatureExtractionService) any { return &s.Status },
	UpdateStatus: func(ctx context.Context, client sednaclientset.Interface, s *sednav1.FeatureExtractionService) error {
		_, err := client.SednaV1alpha1().FeatureExtractionServices(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
		return err
	},
	TemplateNodes: func(s *sednav1.FeatureExtractionService) []string { return workload.NodeNames(s.Spec.Template) },
	TakesReports:  true,
}

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	return workload.New(Kind, deps)
}

// Build computes the service's children: the Deployment (replicas and template of the spec) with
// upstream's env (WORKER_NAME, NAMESPACE, SERVICE_NAME, LC_SERVER, KAFKA_ENABLED when
// kafkaSupport, MODEL_URL), plus JOB_NAME (upstream's library otherwise reports for an owner
// named "sedna") and the worker token; and the Service on port 6000.
func Build(in workload.BuildInput[*sednav1.FeatureExtractionService]) (runtime.Desired, error) {
	s := in.Object
	model, ok := in.Models[s.Spec.Model.Name]
	if !ok {
		return runtime.Desired{}, fmt.Errorf("spec.model.name: model %q not resolved", s.Spec.Model.Name)
	}
	lc := workload.LCEnv(in.LCServer)
	env := append([]corev1.EnvVar{}, lc[:len(lc)-1]...)
	env = append(env,
		workers.PodNameEnv(workload.EnvWorkerName),
		corev1.EnvVar{Name: workload.EnvNamespace, Value: s.Namespace},
		corev1.EnvVar{Name: workload.EnvServiceName, Value: s.Name},
		corev1.EnvVar{Name: workload.EnvJobName, Value: s.Name},
		lc[len(lc)-1],
	)
	env = append(env, workload.KafkaEnv(s.Spec.KafkaSupport)...)
	env = append(env, runtime.WorkerTokenEnv(in.Owner))
	deployment, err := workload.Deployment(in.Owner, WorkerType, s.Spec.Replicas, workers.Worker{
		Template: s.Spec.Template, Env: env, Mounts: []workers.Mount{workload.ModelMount(model)},
	})
	if err != nil {
		return runtime.Desired{}, err
	}
	service, err := workers.NewService(in.Owner, WorkerType, Port)
	if err != nil {
		return runtime.Desired{}, err
	}
	return runtime.Desired{Deployments: []runtime.DesiredDeployment{deployment}, Services: []*corev1.Service{service}}, nil
}
