package jointinference

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Ready condition reasons for problems in what the service refers to; while one of them holds,
// no child is created or updated.
const (
	reasonModelNotFound      = "ModelNotFound"
	reasonCredentialNotFound = runtime.ReasonCredentialNotFound
	reasonInvalidCredential  = runtime.ReasonInvalidCredential
	reasonInvalidSpec        = "InvalidSpec"
	// reasonWorkerTokenConflict: the service's worker-token Secret exists but is not usable.
	reasonWorkerTokenConflict = "WorkerTokenConflict"
)

// blocker is a problem in the service's references that keeps its workers from being built.
type blocker = runtime.Blocker

// workerDeployments are the two worker Deployments as last seen or written (nil when absent).
type workerDeployments struct{ cloud, edge *appsv1.Deployment }

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	cached, err := c.lister.JointInferenceServices(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The children go with the service through their owner references.
		channelKey := runtime.Key(Kind, namespace, name)
		c.models.Set(channelKey, nil, nil)
		c.downstream.Unpublish(channelKey)
		c.reports.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting joint inference service %s: %w", key, err)
	}
	if cached.DeletionTimestamp != nil {
		// The garbage collector is removing the children; nothing to converge or create.
		return c.publish(cached, c.tokens.CachedWorkerToken(ownerOf(cached)))
	}
	token, err := c.tokens.Ensure(ctx, ownerOf(cached))
	var tokenBlock *blocker
	if errors.Is(err, runtime.ErrWorkerTokenConflict) {
		tokenBlock = &blocker{Reason: reasonWorkerTokenConflict, Message: err.Error()}
	} else if err != nil {
		return err
	}
	if err := c.publish(cached, token); err != nil {
		return err
	}
	ji := cached.DeepCopy()

	var block *blocker
	var deployments workerDeployments
	var convergeErr error
	if tokenBlock != nil {
		// Workers would read a token someone else chose: build none.
		block = tokenBlock
		owner := ownerOf(ji)
		deployments.cloud = c.ownedDeployment(owner, workers.DeploymentName(owner, cloudWorkerType))
		deployments.edge = c.ownedDeployment(owner, workers.DeploymentName(owner, edgeWorkerType))
	} else {
		var changes runtime.ChildEvents
		block, deployments, convergeErr = c.converge(ctx, ji, &changes)
		changes.Record(c.recorder, ji)
	}
	if block != nil {
		klog.FromContext(ctx).V(2).Info("Joint inference service blocked", "service", klog.KObj(ji),
			"reason", block.Reason, "message", block.Message)
		c.queue.AddAfter(key, c.blockedRetry)
	}

	pods, err := c.workerPods(ji)
	if err != nil {
		return errors.Join(convergeErr, err)
	}
	metrics, reported := c.reportedMetrics(ji, pods)
	status := c.computeStatus(ji, block, deployments)
	if reported {
		status.Metrics = metrics
	}
	setReportsDropped(status, ji.Generation, c.droppedReports(ji))
	c.recordTransitions(ji, &ji.Status, status)
	if equality.Semantic.DeepEqual(&ji.Status, status) {
		return convergeErr
	}
	ji.Status = *status
	if _, err := c.client.SednaV1alpha1().JointInferenceServices(namespace).UpdateStatus(ctx, ji, metav1.UpdateOptions{}); err != nil {
		return errors.Join(convergeErr, fmt.Errorf("updating the status of joint inference service %s: %w", key, err))
	}
	klog.FromContext(ctx).V(4).Info("Updated joint inference status", "service", klog.KObj(ji))
	return convergeErr
}

// converge makes the children match the spec: the two worker Deployments, the cloud Service and
// the HPAs asked for. Each child is converged even when another fails; the errors are joined.
func (c *Controller) converge(ctx context.Context, ji *sednav1.JointInferenceService, changes *runtime.ChildEvents) (*blocker, workerDeployments, error) {
	owner := ownerOf(ji)
	cloudModel, block, err := c.resolveModel(ctx, ji, ji.Spec.CloudWorker.Model.Name, "cloud")
	if block == nil && err == nil {
		var edgeModel model
		edgeModel, block, err = c.resolveModel(ctx, ji, ji.Spec.EdgeWorker.Model.Name, "edge")
		if block == nil && err == nil {
			return c.convergeChildren(ctx, ji, cloudModel, edgeModel, changes)
		}
	}
	// Blocked: leave the children as they are, but report what exists.
	var existing workerDeployments
	existing.cloud = c.ownedDeployment(owner, workers.DeploymentName(owner, cloudWorkerType))
	existing.edge = c.ownedDeployment(owner, workers.DeploymentName(owner, edgeWorkerType))
	return block, existing, err
}

func (c *Controller) convergeChildren(ctx context.Context, ji *sednav1.JointInferenceService, cloudModel, edgeModel model,
	changes *runtime.ChildEvents) (*blocker, workerDeployments, error) {
	owner := ownerOf(ji)
	var result workerDeployments
	edge, err := edgeWorker(ji, edgeModel, c.lcServer)
	if err != nil {
		return &blocker{Reason: reasonInvalidSpec, Message: err.Error()}, result, nil
	}
	cloudDesired, err := desiredDeployment(ji, cloudWorkerType, cloudWorker(ji, cloudModel))
	if err != nil {
		return &blocker{Reason: reasonInvalidSpec, Message: err.Error()}, result, nil
	}
	edgeDesired, err := desiredDeployment(ji, edgeWorkerType, edge)
	if err != nil {
		return &blocker{Reason: reasonInvalidSpec, Message: err.Error()}, result, nil
	}
	service, err := workers.NewService(owner, cloudWorkerType, cloudPort)
	if err != nil {
		return nil, result, err
	}
	cloudHPA, err := desiredHPA(owner, cloudWorkerType, ji.Spec.CloudWorker.HPA)
	if err != nil {
		return nil, result, err
	}
	edgeHPA, err := desiredHPA(owner, edgeWorkerType, ji.Spec.EdgeWorker.HPA)
	if err != nil {
		return nil, result, err
	}
	observed, err := c.children(ji, changes).Converge(ctx, c.childListers(), runtime.Desired{
		Deployments: []runtime.DesiredDeployment{
			{Deployment: cloudDesired, ScaledByHPA: ji.Spec.CloudWorker.HPA != nil},
			{Deployment: edgeDesired, ScaledByHPA: ji.Spec.EdgeWorker.HPA != nil},
		},
		Services: []*corev1.Service{service},
		HPAs:     []runtime.DesiredHPA{cloudHPA, edgeHPA},
	})
	result.cloud, result.edge = observed.Deployments[cloudDesired.Name], observed.Deployments[edgeDesired.Name]
	return nil, result, err
}

// desiredHPA is the autoscaler of one worker when spec asks for one; without, the owner's HPA of
// that name is deleted.
func desiredHPA(owner workers.Owner, workerType string, spec *sednav1.HPA) (runtime.DesiredHPA, error) {
	deploymentName := workers.DeploymentName(owner, workerType)
	h := runtime.DesiredHPA{Name: workers.HPAName(deploymentName)}
	if spec == nil {
		return h, nil
	}
	hpa, err := workers.NewHPA(owner, workerType, deploymentName, spec)
	h.HPA = hpa
	return h, err
}

// childListers are the caches Converge reads the service's children from.
func (c *Controller) childListers() runtime.ChildListers {
	return runtime.ChildListers{Deployments: c.deployments, Services: c.services, HPAs: c.hpas, Pods: c.pods}
}

// resolveModel reads a worker's Model and, for s3:// URLs with a credentialName, its Secret.
func (c *Controller) resolveModel(ctx context.Context, ji *sednav1.JointInferenceService, name, worker string) (model, *blocker, error) {
	m, err := c.modelLister.Models(ji.Namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return model{}, &blocker{Reason: reasonModelNotFound, Message: fmt.Sprintf("model %q of the %s worker not found", name, worker)}, nil
	}
	if err != nil {
		return model{}, nil, fmt.Errorf("getting model %s/%s: %w", ji.Namespace, name, err)
	}
	creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, ji.Namespace, m.Spec.URL, m.Spec.CredentialName,
		fmt.Sprintf("model %q of the %s worker", name, worker))
	if block != nil || err != nil {
		return model{}, block, err
	}
	return model{url: m.Spec.URL, credentials: creds}, nil, nil
}

// children converges the service's children; what it creates and updates is gathered in changes.
func (c *Controller) children(ji *sednav1.JointInferenceService, changes *runtime.ChildEvents) runtime.Children {
	return runtime.Children{Client: c.kubeClient, Recorder: c.recorder, Owner: ownerOf(ji), Object: ji,
		Description: "joint inference service", Changes: changes}
}

func (c *Controller) ownedDeployment(owner workers.Owner, name string) *appsv1.Deployment {
	return runtime.Children{Owner: owner}.OwnedDeployment(c.deployments, name)
}
