package federatedlearning

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

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

// Ready condition reasons for problems in what the job refers to; while one of them holds, no
// worker is created or replaced.
const (
	reasonModelNotFound       = "ModelNotFound"
	reasonDatasetNotFound     = "DatasetNotFound"
	reasonInvalidSpec         = "InvalidSpec"
	reasonWorkerTokenConflict = "WorkerTokenConflict"
)

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	logger := klog.FromContext(ctx)
	cached, err := c.lister.FederatedLearningJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The pods, the Service and the token Secret go with the job through their owner references.
		c.downstream.Unpublish(runtime.Key(Kind, namespace, name))
		c.forgetReports(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting federated learning job %s: %w", key, err)
	}
	if cached.DeletionTimestamp != nil {
		// The garbage collector is removing the workers; nothing to converge or create.
		return c.publish(cached, c.tokens.CachedWorkerToken(ownerOf(cached)))
	}
	var block *runtime.Blocker
	token, err := c.tokens.Ensure(ctx, ownerOf(cached))
	if errors.Is(err, runtime.ErrWorkerTokenConflict) {
		// Workers would read a token someone else chose: build none.
		block = &runtime.Blocker{Reason: reasonWorkerTokenConflict, Message: err.Error()}
	} else if err != nil {
		return err
	}
	if err := c.publish(cached, token); err != nil {
		return err
	}
	job := cached.DeepCopy()
	status := job.Status.DeepCopy()
	if status.StartTime == nil {
		now := metav1.NewTime(c.now())
		status.StartTime = &now
	}
	restartIfEdited(job, status)
	status.ObservedGeneration = job.Generation
	reports := c.snapshot(job)
	applyReports(status, reports, job.Generation)

	var errs []error
	var refs references
	var resolveErr error
	if block == nil {
		refs, block, resolveErr = c.resolve(ctx, job)
		errs = append(errs, resolveErr)
	}
	pods, err := c.workerPods(job)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var desired []*corev1.Pod
	if block == nil && resolveErr == nil {
		desired, block = desiredPods(job, refs, c.lcServer)
	}
	if block != nil {
		logger.V(2).Info("Federated learning job blocked", "job", klog.KObj(job), "reason", block.Reason, "message", block.Message)
		c.queue.AddAfter(key, c.blockedRetry)
	} else if desired != nil && !finished(status, job.Generation) {
		errs = append(errs, c.converge(ctx, job, desired, pods))
	}
	computeStatus(job, status, block, pods, desired, c.now())
	if wait := markStranded(job, status, pods, desired, c.now()); wait > 0 {
		c.queue.AddAfter(key, wait)
	}
	if reports != nil && len(reports.metrics) > 0 {
		errs = append(errs, c.setModelMetrics(ctx, job, reports.metrics))
	}
	c.recordTransitions(job, &job.Status, status)
	convergeErr := errors.Join(errs...)
	if equality.Semantic.DeepEqual(&job.Status, status) {
		return convergeErr
	}
	job.Status = *status
	if _, err := c.client.SednaV1alpha1().FederatedLearningJobs(namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		return errors.Join(convergeErr, fmt.Errorf("updating the status of federated learning job %s: %w", key, err))
	}
	logger.V(4).Info("Updated federated learning status", "job", klog.KObj(job), "phase", status.Phase, "round", status.Round)
	return convergeErr
}

// resolve reads the job's Models and Datasets from the caches and their credential Secrets.
func (c *Controller) resolve(ctx context.Context, job *sednav1.FederatedLearningJob) (references, *runtime.Blocker, error) {
	var refs references
	if len(job.Spec.TrainingWorkers) == 0 {
		return refs, &runtime.Blocker{Reason: reasonInvalidSpec, Message: errNoTrainingWorkers.Error()}, nil
	}
	model := func(name, usedBy string) (*location, *runtime.Blocker, error) {
		m, err := c.modelLister.Models(job.Namespace).Get(name)
		if err != nil {
			return nil, &runtime.Blocker{Reason: reasonModelNotFound, Message: fmt.Sprintf("model %q of the %s not found", name, usedBy)}, nil
		}
		creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, job.Namespace, m.Spec.URL, m.Spec.CredentialName, fmt.Sprintf("model %q", name))
		return &location{url: m.Spec.URL, credentials: creds}, block, err
	}
	agg, block, err := model(job.Spec.AggregationWorker.Model.Name, "aggregation worker")
	if block != nil || err != nil {
		return refs, block, err
	}
	refs.aggregationModel, refs.aggregationModelName = *agg, job.Spec.AggregationWorker.Model.Name
	if p := job.Spec.PretrainedModel; p != nil && p.Name != "" {
		if refs.pretrained, block, err = model(p.Name, "pretrained model reference"); block != nil || err != nil {
			return refs, block, err
		}
	}
	for i, w := range job.Spec.TrainingWorkers {
		ds, err := c.datasetLister.Datasets(job.Namespace).Get(w.Dataset.Name)
		if err != nil {
			return refs, &runtime.Blocker{Reason: reasonDatasetNotFound,
				Message: fmt.Sprintf("dataset %q of training worker %d not found", w.Dataset.Name, i)}, nil
		}
		creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, job.Namespace, ds.Spec.URL, ds.Spec.CredentialName, fmt.Sprintf("dataset %q", ds.Name))
		if block != nil || err != nil {
			return refs, block, err
		}
		refs.datasets = append(refs.datasets, location{url: ds.Spec.URL, credentials: creds})
		refs.datasetNames = append(refs.datasetNames, ds.Name)
	}
	if job.Spec.Transmitter.Effective() == sednav1.TransmitterS3 {
		s3 := job.Spec.Transmitter.S3
		creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, job.Namespace, s3.AggregationDataPath, s3.CredentialName, "the s3 transmitter")
		if block != nil || err != nil {
			return refs, block, err
		}
		refs.aggData = &location{url: s3.AggregationDataPath, credentials: creds}
	}
	return refs, nil, nil
}

// desiredPods builds the aggregation pod and then the training pods, in that order; a template
// that cannot be built blocks the job with InvalidSpec.
func desiredPods(job *sednav1.FederatedLearningJob, refs references, lcServer string) ([]*corev1.Pod, *runtime.Blocker) {
	agg, err := aggregationPod(job, refs)
	if err != nil {
		return nil, &runtime.Blocker{Reason: reasonInvalidSpec, Message: err.Error()}
	}
	pods := []*corev1.Pod{agg}
	for i := range job.Spec.TrainingWorkers {
		pod, err := trainPod(job, i, refs, lcServer)
		if err != nil {
			return nil, &runtime.Blocker{Reason: reasonInvalidSpec, Message: err.Error()}
		}
		pods = append(pods, pod)
	}
	for _, pod := range pods {
		pod.Annotations[generationAnnotation] = strconv.FormatInt(job.Generation, 10)
	}
	return pods, nil
}

// converge makes the job's children match: the Service first and the aggregation pod before the
// training pods (upstream's order, so that trainers find the aggregator). A missing pod is
// created; a pod built from another spec (its spec hash differs) is deleted, and created anew
// once it is gone; a pod the job no longer wants (fewer training workers) is deleted. After a
// spec edit, a pod whose spec did not change is kept while it runs (re-marked with the new
// generation) and run again if it had ended. Pods that ended serving the current generation are
// kept as they are: their phase is the job's outcome.
func (c *Controller) converge(ctx context.Context, job *sednav1.FederatedLearningJob, desired, existing []*corev1.Pod) error {
	children := runtime.Children{Client: c.kubeClient, Recorder: c.recorder, Owner: ownerOf(job), Object: job, Description: "federated learning job"}
	var errs []error
	service, err := workers.NewService(ownerOf(job), aggregationWorkerType, AggregationPort)
	if err != nil {
		return err
	}
	errs = append(errs, children.ConvergeService(ctx, c.services, service))

	byName := make(map[string]*corev1.Pod, len(existing))
	for _, pod := range existing {
		byName[pod.Name] = pod
	}
	wanted := map[string]bool{}
	for _, pod := range desired {
		wanted[pod.Name] = true
		errs = append(errs, c.convergePod(ctx, job, children, pod, byName[pod.Name]))
	}
	for _, pod := range existing {
		if !wanted[pod.Name] && pod.DeletionTimestamp == nil {
			errs = append(errs, c.deletePod(ctx, job, pod, "the job no longer has this worker"))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) convergePod(ctx context.Context, job *sednav1.FederatedLearningJob, children runtime.Children, desired, actual *corev1.Pod) error {
	if actual == nil {
		created, err := c.kubeClient.CoreV1().Pods(job.Namespace).Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The cache lags, or the name is taken by a pod the job does not control.
			return children.TakenName(ctx, "pod", desired.Name, func(ctx context.Context) (metav1.Object, error) {
				return c.kubeClient.CoreV1().Pods(job.Namespace).Get(ctx, desired.Name, metav1.GetOptions{})
			})
		}
		if err != nil {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Creating pod %s: %v", desired.Name, err)
			return fmt.Errorf("creating pod %s/%s: %w", job.Namespace, desired.Name, err)
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "Created", "Created pod %s", created.Name)
		return nil
	}
	if actual.DeletionTimestamp != nil {
		return nil // created again once it is gone: its delete event enqueues the job
	}
	if actual.Annotations[workers.SpecHashAnnotation] != desired.Annotations[workers.SpecHashAnnotation] {
		return c.deletePod(ctx, job, actual, "its spec changed")
	}
	if actual.Annotations[generationAnnotation] == desired.Annotations[generationAnnotation] {
		return nil
	}
	if ended(actual) {
		return c.deletePod(ctx, job, actual, "it ended before the job's spec changed")
	}
	updated := actual.DeepCopy()
	updated.Annotations = maps.Clone(updated.Annotations)
	updated.Annotations[generationAnnotation] = desired.Annotations[generationAnnotation]
	if _, err := c.kubeClient.CoreV1().Pods(job.Namespace).Update(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("marking pod %s/%s with generation %s: %w", job.Namespace, actual.Name, desired.Annotations[generationAnnotation], err)
	}
	return nil
}

// ended reports whether a pod's containers are done for good.
func ended(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// current reports whether actual is the pod desired: built from the same spec for the same
// generation of the job.
func current(actual, desired *corev1.Pod) bool {
	return actual != nil && actual.DeletionTimestamp == nil &&
		actual.Annotations[workers.SpecHashAnnotation] == desired.Annotations[workers.SpecHashAnnotation] &&
		actual.Annotations[generationAnnotation] == desired.Annotations[generationAnnotation]
}

func (c *Controller) deletePod(ctx context.Context, job *sednav1.FederatedLearningJob, pod *corev1.Pod, why string) error {
	err := c.kubeClient.CoreV1().Pods(job.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or replaced by a pod the next sync looks at
	}
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Deleting pod %s: %v", pod.Name, err)
		return fmt.Errorf("deleting pod %s/%s: %w", job.Namespace, pod.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "Deleted", "Deleted pod %s: %s", pod.Name, why)
	return nil
}

// setModelMetrics puts the aggregated model's metrics on the aggregation Model's status, as
// upstream does, when they differ from what it shows.
func (c *Controller) setModelMetrics(ctx context.Context, job *sednav1.FederatedLearningJob, metrics []sednav1.Metric) error {
	name := job.Spec.AggregationWorker.Model.Name
	cached, err := c.modelLister.Models(job.Namespace).Get(name)
	if err != nil {
		return nil // the job is blocked on the missing Model; the metrics wait for it
	}
	if slices.Equal(cached.Status.Metrics, metrics) {
		return nil
	}
	m := cached.DeepCopy()
	m.Status.Metrics = slices.Clone(metrics)
	now := metav1.NewTime(c.now())
	m.Status.UpdateTime = &now
	if _, err := c.client.SednaV1alpha1().Models(job.Namespace).UpdateStatus(ctx, m, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the metrics of model %s/%s: %w", job.Namespace, name, err)
	}
	return nil
}
