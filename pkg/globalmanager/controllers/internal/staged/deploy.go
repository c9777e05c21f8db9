package staged

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	namespace := owner.GetNamespace()
	client := d.KubeClient.AppsV1().Deployments(namespace)
	actual, err := d.Lister.Deployments(namespace).Get(desired.Name)
	if apierrors.IsNotFound(err) {
		created, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The cache holds only labeled children: read the name's holder from the API server.
			controlled, getErr := sedruntime.ControlledLive(ctx, owner, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, desired.Name, metav1.GetOptions{})
			})
			if getErr != nil {
				return nil, fmt.Errorf("reading deployment %s/%s, whose name is taken: %w", namespace, desired.Name, getErr)
			}
			if controlled {
				return nil, nil // the cache lags; its add event enqueues the job again
			}
			return nil, d.children(owner, job).NotControlled("deployment", desired.Name)
		}
		if err != nil {
			d.Recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Creating deployment %s: %v", desired.Name, err)
			return nil, fmt.Errorf("creating deployment %s/%s: %w", namespace, desired.Name, err)
		}
		d.Recorder.Eventf(job, corev1.EventTypeNormal, "Created", "Created deployment %s", desired.Name)
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting deployment %s/%s: %w", namespace, desired.Name, err)
	}
	if !workers.IsControlledBy(actual, owner) {
		return nil, d.children(owner, job).NotControlled("deployment", desired.Name)
	}
	if actual.Annotations[workers.SpecHashAnnotation] == desired.Annotations[workers.SpecHashAnnotation] {
		return actual, nil
	}
	updated := actual.DeepCopy()
	workers.MarkDesired(updated, desired)
	// Only what GM decides; other fields (strategy, ...) keep what the API server defaulted.
	updated.Spec.Replicas = desired.Spec.Replicas
	updated.Spec.Template = desired.Spec.Template
	written, err := client.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		d.Recorder.Eventf(job, corev1.EventTypeWarning, "FailedUpdate", "Updating deployment %s: %v", desired.Name, err)
		return nil, fmt.Errorf("updating deployment %s/%s: %w", namespace, desired.Name, err)
	}
	d.Recorder.Eventf(job, corev1.EventTypeNormal, "Updated", "Updated deployment %s", desired.Name)
	return written, nil
}

func (d *Deployments) children(owner workers.Owner, job runtime.Object) sedruntime.Children {
	return sedruntime.Children{Client: d.KubeClient, Recorder: d.Recorder, Owner: owner, Object: job, Description: d.Description}
}
