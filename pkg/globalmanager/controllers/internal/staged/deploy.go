package staged

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sedruntime "github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// DeployedRoundAnnotation is, on an inference worker's pod template, the last round whose model
// was deployed: changing it rolls the worker so that it loads the new model (a worker without hot
// update reads its model only at start).
const DeployedRoundAnnotation = "sedna.io/deployed-round"

// DeployedRound is the last round whose model was deployed: from the status and, as
// status.rounds keeps only the newest rounds, from the worker's template.
func DeployedRound(status *sednav1.LearningProgress, existing *appsv1.Deployment) int32 {
	var round int32
	for _, r := range status.Rounds {
		if r.Deployed && r.Round > round {
			round = r.Round
		}
	}
	if status.Stage == sednav1.StageDeploy && status.StageState == sednav1.StageCompleted && status.Round > round {
		round = status.Round
	}
	if existing != nil {
		if n, err := strconv.Atoi(existing.Spec.Template.Annotations[DeployedRoundAnnotation]); err == nil && int32(n) > round {
			round = int32(n)
		}
	}
	return round
}

// MarkDeployedRound marks template with the last deployed round (none when round is 0).
func MarkDeployedRound(template *corev1.PodTemplateSpec, round int32) {
	if round <= 0 {
		return
	}
	if template.Annotations == nil {
		template.Annotations = map[string]string{}
	}
	template.Annotations[DeployedRoundAnnotation] = strconv.Itoa(int(round))
}

// Deployments keeps the Deployments of a controller's jobs.
type Deployments struct {
	KubeClient kubernetes.Interface
	Lister     appslisters.DeploymentLister
	Recorder   record.EventRecorder
	// Description names the jobs' kind in messages, e.g. "incremental learning job".
	Description string
}

// Owned is the named Deployment when owner controls it, else nil.
func (d *Deployments) Owned(owner workers.Owner, name string) *appsv1.Deployment {
	found, err := d.Lister.Deployments(owner.GetNamespace()).Get(name)
	if err != nil || !workers.IsControlledBy(found, owner) {
		return nil
	}
	return found
}

// Converge creates the Deployment or updates it when its spec hash differs. It returns the
// Deployment as last seen or written, or nil when it exists in the API but not yet in the cache.
// Events are recorded on job.
func (d *Deployments) Converge(ctx context.Context, owner workers.Owner, job runtime.Object, desired *appsv1.Deployment) (*appsv1.Deployment, error) {
	got, err := d.children(owner, job).ConvergeDeployment(ctx, d.Lister, sedruntime.DesiredDeployment{Deployment: desired})
	if err != nil {
		return nil, err
	}
	return got, nil
}

func (d *Deployments) children(owner workers.Owner, job runtime.Object) sedruntime.Children {
	return sedruntime.Children{Client: d.KubeClient, Recorder: d.Recorder, Owner: owner, Object: job, Description: d.Description}
}
