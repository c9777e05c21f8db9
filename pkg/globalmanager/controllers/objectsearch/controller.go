// Package objectsearch reconciles ObjectSearchServices: the reid workers (Deployment and Service
// "<name>-reidworker" on 9378), the user worker (one replica, Service "<name>-userworker" on
// 9379) and one pod per tracking worker, with readiness per worker group. The controller is the
// shared multi-edge one (workload).
package objectsearch

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
	Name = "ObjectSearch"
	// KindName is the API kind.
	KindName = "ObjectSearchService"
)

// Kind is the service kind as the shared controller handles it.
var Kind = workload.Kind[*sednav1.ObjectSearchService]{
	Name: Name, Metrics: "objectsearch", KindName: KindName, Description: "object search service",
	Informer: func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, workload.Lister[*sednav1.ObjectSearchService]) {
		i := f.Sedna().V1alpha1().ObjectSearchServices()
		l := i.Lister()
		return i.Informer(), workload.Lister[*sednav1.ObjectSearchService]{
			Get: func(ns, name string) (*sednav1.ObjectSearchService, error) {
				return l.ObjectSearchServices(ns).Get(name)
			},
			List: l.List,
		}
	},
	ModelNames: func(*sednav1.ObjectSearchService) []string { return nil },
	Build:      Build,
	SetStatus: func(s *sednav1.ObjectSearchService, in workload.StatusInput) {
		owner := workers.Owner{Object: s, Kind: KindName}
		runtime.SetServiceStatus(&s.Status, s.Generation, in.Now, in.Block, []runtime.GroupReadiness{
			workload.DeploymentGroup(owner, in, workload.UserWorkerType, workload.ConditionUserWorkerReady, 1),
			workload.PodGroup(owner, in, workload.TrackingWorkerType, workload.ConditionTrackingWorkersReady, int32(len(s.Spec.TrackingWorkers))),
			workload.DeploymentGroup(owner, in, workload.ReidWorkerType, workload.ConditionReidWorkersReady, workload.Replicas(s.Spec.ReidWorkers.Replicas)),
		})
	},
	Conditions: func(s *sednav1.ObjectSearchService) []metav1.Condition { return s.Status.Conditions },
	Status:     func(s *sednav1.ObjectSearchService) any { return &s.Status },
	UpdateStatus: func(ctx context.Context, client sednaclientset.Interface, s *sednav1.ObjectSearchService) error {
		_, err := client.SednaV1alpha1().ObjectSearchServices(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
		return err
	},
	TemplateNodes: func(s *sednav1.ObjectSearchService) []string {
		templates := []corev1.PodTemplateSpec{s.Spec.UserWorker.Template, s.Spec.ReidWorkers.Template}
		for _, t := range s.Spec.TrackingWorkers {
			templates = append(templates, t.Template)
		}
		return workload.NodeNames(templates...)
	},
	// Upstream's workers of this kind report nothing; a report is still taken, not refused.
	TakesReports: true,
}

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	return workload.New(Kind, deps)
}

// Build computes the service's children with upstream's names, ports and env: the user worker
// gets NAMESPACE, SERVICE_NAME and WORKER_NAME "userworker-<suffix>"; each tracking worker
// USERWORKER_URL "<name>-userworker.<ns>:9379" and EDGEMESH_URL "<name>-reidworker.<ns>:9378".
func Build(in workload.BuildInput[*sednav1.ObjectSearchService]) (runtime.Desired, error) {
	s := in.Object
	reid, reidService, err := workload.ReidWorkers(in.Owner, s.Spec.ReidWorkers)
	if err != nil {
		return runtime.Desired{}, err
	}
	one := int32(1)
	user, err := workload.Deployment(in.Owner, workload.UserWorkerType, &one, workers.Worker{
		Template: s.Spec.UserWorker.Template,
		Env: []corev1.EnvVar{
			{Name: workload.EnvNamespace, Value: s.Namespace},
			{Name: workload.EnvServiceName, Value: s.Name},
			{Name: workload.EnvWorkerName, Value: "userworker-" + workers.StableSuffix(in.Owner, 5)},
			runtime.WorkerTokenEnv(in.Owner),
		},
	})
	if err != nil {
		return runtime.Desired{}, err
	}
	userService, err := workers.NewService(in.Owner, workload.UserWorkerType, workload.UserWorkerPort)
	if err != nil {
		return runtime.Desired{}, err
	}
	trackers, err := workload.TrackingWorkers(in.Owner, s.Spec.TrackingWorkers,
		workload.ServiceURL(in.Owner, workload.UserWorkerType, workload.UserWorkerPort))
	if err != nil {
		return runtime.Desired{}, err
	}
	return runtime.Desired{
		Deployments: []runtime.DesiredDeployment{reid, user},
		Services:    []*corev1.Service{reidService, userService},
		Pods:        trackers,
	}, nil
}
