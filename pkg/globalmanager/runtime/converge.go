package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// ChildListers are the caches of one owner kind's children (ChildInformerFactory). A lister the
// kind never needs may be nil: converging a Desired that names such a child is an error.
type ChildListers struct {
	Deployments appslisters.DeploymentLister
	Services    corelisters.ServiceLister
	HPAs        autoscalinglisters.HorizontalPodAutoscalerLister
	Pods        corelisters.PodLister
}

// DesiredDeployment is a worker Deployment as the owner's spec asks for it.
type DesiredDeployment struct {
	Deployment *appsv1.Deployment
	// ScaledByHPA leaves the replicas to the HorizontalPodAutoscaler that scales the Deployment.
	ScaledByHPA bool
}

// DesiredHPA is the autoscaler of one worker Deployment: HPA nil deletes the owner's HPA of
// that name (the spec stopped asking for one).
type DesiredHPA struct {
	Name string
	HPA  *autoscalingv2.HorizontalPodAutoscaler
}

// DesiredPod is a bare worker pod. Its name is deterministic (a cache that lags cannot make GM
// create a second one: the create fails with AlreadyExists) and it is created when absent, so a
// deleted pod is recreated.
type DesiredPod struct {
	Pod *corev1.Pod
	// Replace makes the pod behave like a ReplicaSet's: one whose spec hash differs from the
	// desired one (a spec edit) or that ended (Succeeded or Failed) is deleted, and the next sync
	// creates it again. Without it (a job's pod) an existing pod is left as it is: a pod's spec
	// cannot be updated and a job's ended pod is its result.
	Replace bool
}

// Desired is every child of one owner as a pure builder computes it from the spec. Converge
// creates what is missing, updates what differs, and records one Event per kind of change.
type Desired struct {
	Deployments []DesiredDeployment
	Services    []*corev1.Service
	HPAs        []DesiredHPA
	Pods        []DesiredPod
}

// Observed are the owner's children after Converge, as last seen or written, by name. A child
// absent from the maps does not exist yet (or exists in the API server but not yet in the cache).
type Observed struct {
	Deployments map[string]*appsv1.Deployment
	Pods        map[string]*corev1.Pod
}

// Converge makes the owner's children match desired. The children are independent API objects
// (workers find each other by Service name when they run, not when they are created), so they
// are converged concurrently: a sync waits for one round trip, not one per child. Each child is
// converged even when another fails; the errors are joined. Adoption is by controller
// reference: a child of the desired name that the owner does not control is a ChildConflict.
func (c Children) Converge(ctx context.Context, listers ChildListers, desired Desired) (Observed, error) {
	observed := Observed{Deployments: map[string]*appsv1.Deployment{}, Pods: map[string]*corev1.Pod{}}
	var mu sync.Mutex
	var tasks []func() error
	for _, d := range desired.Deployments {
		tasks = append(tasks, func() error {
			got, err := c.ConvergeDeployment(ctx, listers.Deployments, d)
			if got != nil {
				mu.Lock()
				observed.Deployments[d.Deployment.Name] = got
				mu.Unlock()
			}
			return err
		})
	}
	for _, s := range desired.Services {
		tasks = append(tasks, func() error { return c.ConvergeService(ctx, listers.Services, s) })
	}
	for _, h := range desired.HPAs {
		tasks = append(tasks, func() error { return c.ConvergeHPA(ctx, listers.HPAs, h) })
	}
	for _, p := range desired.Pods {
		tasks = append(tasks, func() error {
			got, err := c.ConvergePod(ctx, listers.Pods, p)
			if got != nil {
				mu.Lock()
				observed.Pods[p.Pod.Name] = got
				mu.Unlock()
			}
			return err
		})
	}
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, task := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = task()
		}()
	}
	wg.Wait()
	return observed, errors.Join(errs...)
}

// OwnedDeployment is the named Deployment from lister when the owner controls it, else nil.
func (c Children) OwnedDeployment(lister appslisters.DeploymentLister, name string) *appsv1.Deployment {
	d, err := lister.Deployments(c.Owner.GetNamespace()).Get(name)
	if err != nil || !workers.IsControlledBy(d, c.Owner) {
		return nil
	}
	return d
}

// ConvergeDeployment creates or updates one worker Deployment: its template, labels and (unless
// an HPA scales it) replicas. It returns the Deployment as last seen or written, or nil when it
// was just found to exist in the API server but not yet in the cache.
func (c Children) ConvergeDeployment(ctx context.Context, lister appslisters.DeploymentLister, d DesiredDeployment) (*appsv1.Deployment, error) {
	desired := d.Deployment
	namespace := c.Owner.GetNamespace()
	client := c.Client.AppsV1().Deployments(namespace)
	actual, err := lister.Deployments(namespace).Get(desired.Name)
	if apierrors.IsNotFound(err) {
		created, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, c.TakenName(ctx, "deployment", desired.Name, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, desired.Name, metav1.GetOptions{})
			})
		}
		if err != nil {
			c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedCreate", "Creating deployment %s: %v", desired.Name, err)
			return nil, fmt.Errorf("creating deployment %s/%s: %w", namespace, desired.Name, err)
		}
		c.changed("Created", "deployment", desired.Name)
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting deployment %s/%s: %w", namespace, desired.Name, err)
	}
	if !workers.IsControlledBy(actual, c.Owner) {
		return nil, c.NotControlled("deployment", desired.Name)
	}
	replicasWrong := !d.ScaledByHPA && !equality.Semantic.DeepEqual(actual.Spec.Replicas, desired.Spec.Replicas)
	if workers.ChildUnchanged(actual, desired) && !replicasWrong {
		return actual, nil
	}
	updated := actual.DeepCopy()
	workers.MarkDesired(updated, desired)
	// Only what GM decides; other fields (strategy, ...) keep what the API server defaulted.
	updated.Spec.Template = desired.Spec.Template
	if !d.ScaledByHPA {
		updated.Spec.Replicas = desired.Spec.Replicas
	}
	written, err := client.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedUpdate", "Updating deployment %s: %v", desired.Name, err)
		return actual, fmt.Errorf("updating deployment %s/%s: %w", namespace, desired.Name, err)
	}
	c.changed("Updated", "deployment", desired.Name)
	return written, nil
}

// ConvergeHPA creates or updates the HPA h describes, or deletes the owner's HPA of its name
// when h.HPA is nil.
func (c Children) ConvergeHPA(ctx context.Context, lister autoscalinglisters.HorizontalPodAutoscalerLister, h DesiredHPA) error {
	namespace := c.Owner.GetNamespace()
	client := c.Client.AutoscalingV2().HorizontalPodAutoscalers(namespace)
	actual, err := lister.HorizontalPodAutoscalers(namespace).Get(h.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting horizontal pod autoscaler %s/%s: %w", namespace, h.Name, err)
	}
	exists := err == nil
	if h.HPA == nil {
		if !exists || !workers.IsControlledBy(actual, c.Owner) {
			return nil
		}
		err := client.Delete(ctx, h.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &actual.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting horizontal pod autoscaler %s/%s: %w", namespace, h.Name, err)
		}
		c.changed("Deleted", "horizontal pod autoscaler", h.Name)
		return nil
	}
	desired := h.HPA
	if !exists {
		_, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return c.TakenName(ctx, "horizontal pod autoscaler", h.Name, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, h.Name, metav1.GetOptions{})
			})
		}
		if err != nil {
			c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedCreate", "Creating horizontal pod autoscaler %s: %v", h.Name, err)
			return fmt.Errorf("creating horizontal pod autoscaler %s/%s: %w", namespace, h.Name, err)
		}
		c.changed("Created", "horizontal pod autoscaler", h.Name)
		return nil
	}
	if !workers.IsControlledBy(actual, c.Owner) {
		return c.NotControlled("horizontal pod autoscaler", h.Name)
	}
	if workers.ChildUnchanged(actual, desired) {
		return nil
	}
	updated := actual.DeepCopy()
	workers.MarkDesired(updated, desired)
	updated.Spec = *desired.Spec.DeepCopy()
	if _, err := client.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedUpdate", "Updating horizontal pod autoscaler %s: %v", h.Name, err)
		return fmt.Errorf("updating horizontal pod autoscaler %s/%s: %w", namespace, h.Name, err)
	}
	c.changed("Updated", "horizontal pod autoscaler", h.Name)
	return nil
}

// ConvergePod creates the pod when absent and, for a replaceable pod, deletes it when its spec
// is outdated or it ended (the next sync creates it again). It returns the pod as last seen or
// created, or nil when it exists in the API server but not yet in the cache.
func (c Children) ConvergePod(ctx context.Context, lister corelisters.PodLister, p DesiredPod) (*corev1.Pod, error) {
	desired := p.Pod
	namespace := c.Owner.GetNamespace()
	client := c.Client.CoreV1().Pods(namespace)
	actual, err := lister.Pods(namespace).Get(desired.Name)
	if apierrors.IsNotFound(err) {
		created, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, c.TakenName(ctx, "pod", desired.Name, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, desired.Name, metav1.GetOptions{})
			})
		}
		if err != nil {
			c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedCreate", "Creating pod %s: %v", desired.Name, err)
			return nil, fmt.Errorf("creating pod %s/%s: %w", namespace, desired.Name, err)
		}
		c.changed("Created", "pod", desired.Name)
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting pod %s/%s: %w", namespace, desired.Name, err)
	}
	if !workers.IsControlledBy(actual, c.Owner) {
		return nil, c.NotControlled("pod", desired.Name)
	}
	if !p.Replace || actual.DeletionTimestamp != nil {
		return actual, nil
	}
	ended := actual.Status.Phase == corev1.PodSucceeded || actual.Status.Phase == corev1.PodFailed
	if workers.ChildUnchanged(actual, desired) && !ended {
		return actual, nil
	}
	err = client.Delete(ctx, desired.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &actual.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return actual, fmt.Errorf("deleting pod %s/%s to replace it: %w", namespace, desired.Name, err)
	}
	c.changed("Replaced", "pod", desired.Name)
	return actual, nil
}
