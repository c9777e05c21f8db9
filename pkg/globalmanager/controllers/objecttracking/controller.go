// Package objecttracking reconciles ObjectTrackingServices, which upstream defines and never
// reconciles: the children its spec implies, as ObjectSearchService's without the user worker —
// the reid workers (Deployment and Service "<name>-reidworker" on 9378) and one pod per tracking
// worker with EDGEMESH_URL, with readiness per worker group. The controller is the shared
// multi-edge one (workload).
package objecttracking

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
	Name = "ObjectTracking"
	// KindName is the API kind.
	KindName = "ObjectTrackingService"
)

// Kind is the service kind as the shared controller handles it.
var Kind = workload.Kind[*sednav1.ObjectTrackingService]{
	Name: Name, Metrics: "objecttracking", KindName: KindName, Description: "object tracking service",
	Informer: func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, workload.Lister[*sednav1.ObjectTrackingService]) {
		i := f.Sedna().V1alpha1().ObjectTrackingServices()
		l := i.Lister()
		return i.Informer(), workload.Lister[*sednav1.ObjectTrackingService]{
			Get: func(ns, name string) (*sednav1.ObjectTrackingService, error) {
				return l.ObjectTrackingServices(ns).Get(name)
			},
			List: l.List,
		}
	},
	ModelNames: func(*sednav1.ObjectTrackingService) []string { return nil },
	Build:      Build,
	SetStatus: func(s *sednav1.ObjectTrackingService, in workload.StatusInput) {
		owner := workers.Owner{Object: s, Kind: KindName}
		runtime.SetServiceStatus(&s.Status, s.Generation, in.Now, in.Block, []runtime.GroupReadiness{
			workload.PodGroup(owner, in, workload.TrackingWorkerType, workload.ConditionTrackingWorkersReady, int32(len(s.Spec.TrackingWorkers))),
			workload.DeploymentGroup(owner, in, workload.ReidWorkerType, workload.ConditionReidWorkersReady, workload.Replicas(s.Spec.ReidWorkers.Replicas)),
		})
	},
	Conditions: func(s *sednav1.ObjectTrackingService) []metav1.Condition { return s.Status.Conditions },
	Status:     func(s *sednav1.ObjectTrackingService) any { return &s.Status },
	UpdateStatus: func(ctx context.Context, client sednaclientset.Interface, s *sednav1.ObjectTrackingService) error {
		_, err := client.SednaV1alpha1().ObjectTrackingServices(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
		return err
	},
	TemplateNodes: func(s *sednav1.ObjectTrackingService) []string {
		templates := []corev1.PodTemplateSpec{s.Spec.ReidWorkers.Template}
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

// Build computes the service's children: the reid workers and their Service, and the tracking
// worker pods with EDGEMESH_URL "<name>-reidworker.<ns>:9378".
func Build(in workload.BuildInput[*sednav1.ObjectTrackingService]) (runtime.Desired, error) {
	s := in.Object
	reid, reidService, err := workload.ReidWorkers(in.Owner, s.Spec.ReidWorkers)
	if err != nil {
		return runtime.Desired{}, err
	}
	trackers, err := workload.TrackingWorkers(in.Owner, s.Spec.TrackingWorkers, "")
	if err != nil {
		return runtime.Desired{}, err
	}
	return runtime.Desired{
		Deployments: []runtime.DesiredDeployment{reid},
		Services:    []*corev1.Service{reidService},
		Pods:        trackers,
	}, nil
}
