package incrementallearning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// references are the objects a job refers to, as found in the caches.
type references struct {
	dataset *sednav1.Dataset
	models  map[string]*sednav1.Model
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	logger := klog.FromContext(ctx)
	cached, err := c.lister.IncrementalLearningJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The pods and the inference Deployment go with the job through their owner references.
		c.unpublish(namespace, name)
		c.forgetPending(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting incremental learning job %s: %w", key, err)
	}
	refs, block := c.resolve(cached)
	node := ""
	if refs.dataset != nil {
		node = refs.dataset.Spec.NodeName
	}
	if cached.DeletionTimestamp != nil {
		// The garbage collector is removing the workers; nothing to converge or create.
		return c.publish(cached, node, c.tokens.CachedWorkerToken(ownerOf(cached)))
	}
	token, err := c.tokens.Ensure(ctx, ownerOf(cached))
	if errors.Is(err, runtime.ErrWorkerTokenConflict) {
		if block == nil {
			block = &blocker{reasonWorkerTokenConflict, err.Error()}
		}
	} else if err != nil {
		return err
	}
	if err := c.publish(cached, node, token); err != nil {
		return err
	}
	job := cached.DeepCopy()

	pending := c.takePending(key)
	status := job.Status.DeepCopy()
	status.ObservedGeneration = job.Generation
	if status.StartTime == nil {
		now := metav1.NewTime(c.now())
		status.StartTime = &now
	}
	if status.Stage == "" {
		status.Stage, status.StageState = sednav1.StageTrain, sednav1.StageWaiting
	}
	for _, report := range pending {
		if err := applyReport(status, report, job.Generation); err != nil {
			return err
		}
	}

	var errs []error
	var inference *appsv1.Deployment
	if block == nil {
		inference, block, err = c.convergeInference(ctx, job, status, refs)
		errs = append(errs, err)
	}
	if block == nil {
		var retryAfter time.Duration
		block, retryAfter, err = c.convergeStage(ctx, job, status, refs)
		errs = append(errs, err)
		if retryAfter > 0 {
			c.queue.AddAfter(key, retryAfter)
		}
		errs = append(errs, c.deleteOldRoundPods(ctx, job, status.Round))
	}
	if block != nil {
		logger.V(2).Info("Incremental learning job blocked", "job", klog.KObj(job), "reason", block.reason, "message", block.message)
		c.queue.AddAfter(key, c.blockedRetry)
		if inference == nil {
			inference = c.ownedDeployment(job, inferenceDeploymentName(job))
		}
	}
	setConditions(job, status, block, inference)
	c.recordTransitions(job, &job.Status, status)
	convergeErr := errors.Join(errs...)
	if equality.Semantic.DeepEqual(&job.Status, status) {
		c.donePending(key, len(pending))
		return convergeErr
	}
	job.Status = *status
	updated, err := c.client.SednaV1alpha1().IncrementalLearningJobs(namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return errors.Join(convergeErr, fmt.Errorf("updating the status of incremental learning job %s: %w", key, err))
	}
	c.donePending(key, len(pending))
	logger.V(4).Info("Updated incremental learning status", "job", klog.KObj(job), "stage", status.Stage,
		"state", status.StageState, "round", status.Round)
	// The LC learns Starting, Running and Failed from the status: send it now rather than
	// after the informer's round trip.
	if err := c.publish(updated, node, token); err != nil {
		return errors.Join(convergeErr, err)
	}
	return convergeErr
}

// resolve finds the Dataset and the Models of a job in the caches.
func (c *Controller) resolve(job *sednav1.IncrementalLearningJob) (references, *blocker) {
	refs := references{models: map[string]*sednav1.Model{}}
	ds, err := c.datasetLister.Datasets(job.Namespace).Get(job.Spec.Dataset.Name)
	if err != nil {
		return refs, &blocker{reasonDatasetNotFound, fmt.Sprintf("dataset %q not found", job.Spec.Dataset.Name)}
	}
	refs.dataset = ds
	for _, name := range modelNames(job) {
		m, err := c.modelLister.Models(job.Namespace).Get(name)
		if err != nil {
			return refs, &blocker{reasonModelNotFound, fmt.Sprintf("model %q not found", name)}
		}
		refs.models[name] = m
	}
	return refs, nil
}

// locate returns how a worker reaches url: for s3:// URLs with a credential Secret, the Secret's
// endpoint and keys (by reference). Other URLs need no credentials.
func (c *Controller) locate(ctx context.Context, job *sednav1.IncrementalLearningJob, url, secretName, usedBy string) (location, *blocker, error) {
	loc := location{url: url}
	if secretName == "" || !strings.HasPrefix(strings.ToLower(url), "s3://") {
		return loc, nil, nil
	}
	secret, err := c.kubeClient.CoreV1().Secrets(job.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return loc, &blocker{reasonCredentialNotFound, fmt.Sprintf("secret %q named by %s not found", secretName, usedBy)}, nil
	}
	if err != nil {
		return loc, nil, fmt.Errorf("getting secret %s/%s: %w", job.Namespace, secretName, err)
	}
	loc.credentials, err = workers.S3CredentialsFromSecret(secret)
	if err != nil {
		return loc, &blocker{reasonInvalidCredential, fmt.Sprintf("%s: %v", usedBy, err)}, nil
	}
	return loc, nil, nil
}

// deployedRound is the last round whose model was put over the deploy Model's URL: from the
// status and, as status.rounds keeps only the newest rounds, from the worker's template.
func deployedRound(status *sednav1.ILJobStatus, existing *appsv1.Deployment) int32 {
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
		if n, err := strconv.Atoi(existing.Spec.Template.Annotations[deployedRoundAnnotation]); err == nil && int32(n) > round {
			round = int32(n)
		}
	}
	return round
}

// convergeInference creates or updates the inference worker Deployment. Without hot update, a
// newly deployed round changes its template, which rolls the worker onto the new model.
func (c *Controller) convergeInference(ctx context.Context, job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus,
	refs references) (*appsv1.Deployment, *blocker, error) {
	model := refs.models[job.Spec.DeploySpec.Model.Name]
	existing := c.ownedDeployment(job, inferenceDeploymentName(job))
	loc, block, err := c.locate(ctx, job, model.Spec.URL, model.Spec.CredentialName, "model "+model.Name)
	if block != nil || err != nil {
		return existing, block, err
	}
	round := int32(0)
	if !job.Spec.DeploySpec.Model.HotUpdateEnabled {
		round = deployedRound(status, existing)
	}
	desired, err := inferenceDeployment(job, loc, c.lcServer, round)
	if err != nil {
		return existing, &blocker{reasonInvalidSpec, err.Error()}, nil
	}
	written, err := c.convergeDeployment(ctx, job, desired)
	return written, nil, err
}

func (c *Controller) ownedDeployment(job *sednav1.IncrementalLearningJob, name string) *appsv1.Deployment {
	d, err := c.deployments.Deployments(job.Namespace).Get(name)
	if err != nil || !workers.IsControlledBy(d, ownerOf(job)) {
		return nil
	}
	return d
}

// childConflict records and returns that the Deployment name is held by an object the job does
// not control.
func (c *Controller) childConflict(job *sednav1.IncrementalLearningJob, name string) error {
	msg := fmt.Sprintf("deployment %s/%s exists and is not controlled by incremental learning job %s", job.Namespace, name, job.Name)
	c.recorder.Event(job, corev1.EventTypeWarning, "ChildConflict", msg)
	return errors.New(msg)
}

// convergeDeployment creates the Deployment or updates it when its spec hash differs. It returns
// the Deployment as last seen or written, or nil when it exists in the API but not yet in the cache.
func (c *Controller) convergeDeployment(ctx context.Context, job *sednav1.IncrementalLearningJob, desired *appsv1.Deployment) (*appsv1.Deployment, error) {
	client := c.kubeClient.AppsV1().Deployments(job.Namespace)
	actual, err := c.deployments.Deployments(job.Namespace).Get(desired.Name)
	if apierrors.IsNotFound(err) {
		created, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The cache holds only labeled children: read the name's holder from the API server.
			controlled, getErr := runtime.ControlledLive(ctx, job, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, desired.Name, metav1.GetOptions{})
			})
			if getErr != nil {
				return nil, fmt.Errorf("reading deployment %s/%s, whose name is taken: %w", job.Namespace, desired.Name, getErr)
			}
			if controlled {
				return nil, nil // the cache lags; its add event enqueues the job again
			}
			return nil, c.childConflict(job, desired.Name)
		}
		if err != nil {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Creating deployment %s: %v", desired.Name, err)
			return nil, fmt.Errorf("creating deployment %s/%s: %w", job.Namespace, desired.Name, err)
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "Created", "Created deployment %s", desired.Name)
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting deployment %s/%s: %w", job.Namespace, desired.Name, err)
	}
	if !workers.IsControlledBy(actual, ownerOf(job)) {
		return nil, c.childConflict(job, desired.Name)
	}
	if actual.Annotations[workers.SpecHashAnnotation] == desired.Annotations[workers.SpecHashAnnotation] {
		return actual, nil
	}
	updated := actual.DeepCopy()
	labels := maps.Clone(updated.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, desired.Labels)
	updated.Labels = labels
	annotations := maps.Clone(updated.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[workers.SpecHashAnnotation] = desired.Annotations[workers.SpecHashAnnotation]
	updated.Annotations = annotations
	// Only what GM decides; other fields (strategy, ...) keep what the API server defaulted.
	updated.Spec.Replicas = desired.Spec.Replicas
	updated.Spec.Template = desired.Spec.Template
	written, err := client.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedUpdate", "Updating deployment %s: %v", desired.Name, err)
		return nil, fmt.Errorf("updating deployment %s/%s: %w", job.Namespace, desired.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "Updated", "Updated deployment %s", desired.Name)
	return written, nil
}

// stagePods are the job's pods of one stage and round, oldest try first.
func (c *Controller) stagePods(job *sednav1.IncrementalLearningJob, workerType string, round int32) ([]*corev1.Pod, error) {
	selector := workers.Labels(ownerOf(job), workerType)
	selector[roundLabel] = strconv.Itoa(int(round))
	pods, err := c.pods.Pods(job.Namespace).List(labels.SelectorFromSet(selector))
	if err != nil {
		return nil, fmt.Errorf("listing the %s pods of round %d: %w", workerType, round, err)
	}
	pods = slices.DeleteFunc(pods, func(p *corev1.Pod) bool { return !workers.IsControlledBy(p, ownerOf(job)) })
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return podAttempt(a) - podAttempt(b) })
	return pods, nil
}

func podAttempt(pod *corev1.Pod) int {
	n, _ := strconv.Atoi(pod.Labels[attemptLabel]) // a missing label sorts first
	return n
}

// podFinished is when a failed pod ended: its last container's end, else its last condition change.
func podFinished(pod *corev1.Pod) time.Time {
	var end time.Time
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range statuses {
			if t := s.State.Terminated; t != nil && t.FinishedAt.After(end) {
				end = t.FinishedAt.Time
			}
		}
	}
	if end.IsZero() {
		for _, cond := range pod.Status.Conditions {
			if cond.LastTransitionTime.After(end) {
				end = cond.LastTransitionTime.Time
			}
		}
	}
	if end.IsZero() {
		end = pod.CreationTimestamp.Time
	}
	return end
}

// convergeStage keeps one pod for the current Train or Eval stage while it is Ready, Starting or
// Running, and derives the stage state from it: Starting once created, Running once running (a
// pod that succeeded stays Running: the LC completes the stage from the worker's report). A
// failed pod is replaced after an exponential delay up to maxStageAttempts tries; then the stage
// fails. A pod that disappears is created again. It returns how long to wait before a retry.
func (c *Controller) convergeStage(ctx context.Context, job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus,
	refs references) (*blocker, time.Duration, error) {
	var workerType string
	switch status.Stage {
	case sednav1.StageTrain:
		workerType = trainWorkerType
	case sednav1.StageEval:
		workerType = evalWorkerType
	default:
		return nil, 0, nil // the LC deploys by itself
	}
	if status.Round == 0 || stateRank(status.StageState) == 0 {
		return nil, 0, nil
	}
	pods, err := c.stagePods(job, workerType, status.Round)
	if err != nil {
		return nil, 0, err
	}
	var last *corev1.Pod
	attempts := 0
	if len(pods) > 0 {
		last = pods[len(pods)-1]
		attempts = podAttempt(last)
	}
	switch {
	case last != nil && last.Status.Phase == corev1.PodSucceeded:
		advanceState(status, sednav1.StageRunning)
		finished := podFinished(last)
		if finished.IsZero() {
			return nil, reportGrace, nil // no finish time yet: nothing to measure the silence from
		}
		// The silence counts from when both hold: the pod succeeded and the LC is connected. An
		// offline edge keeps the report and sends it on reconnect, which enqueues the job.
		connectedSince, connected := c.lcConnectedSince(refs.dataset.Spec.NodeName)
		if !connected {
			return nil, 0, nil
		}
		silence := c.now().Sub(latest(finished, connectedSince))
		if silence < reportGrace {
			return nil, reportGrace - silence, nil
		}
		status.StageState = sednav1.StageFailed
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation, Reason: reasonWorkerDidNotReport,
			Message: fmt.Sprintf("round %d: the %s pod %s succeeded %s ago but its worker's report did not come in %s with the LC connected",
				status.Round, workerType, last.Name, c.now().Sub(finished).Round(time.Second), silence.Round(time.Second)),
		})
		return nil, 0, nil
	case last != nil && last.Status.Phase == corev1.PodRunning:
		advanceState(status, sednav1.StageRunning)
		return nil, 0, nil
	case last != nil && last.Status.Phase != corev1.PodFailed:
		advanceState(status, sednav1.StageStarting)
		return nil, 0, nil
	case last != nil && attempts >= maxStageAttempts:
		status.StageState = sednav1.StageFailed
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation, Reason: reasonStagePodFailed,
			Message: fmt.Sprintf("round %d: the %s pod failed %d times, last %s: %s", status.Round, workerType, attempts, last.Name, podFailure(last)),
		})
		return nil, 0, nil
	case last != nil:
		delay := c.retryDelay << (attempts - 1)
		if wait := podFinished(last).Add(delay).Sub(c.now()); wait > 0 {
			return nil, wait, nil
		}
	}

	attempt := attempts + 1
	pod, block, refused, err := c.desiredStagePod(ctx, job, status, refs, workerType, attempt)
	if refused != nil {
		status.StageState = sednav1.StageFailed
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: job.Generation, Reason: reasonURLRefused,
			Message: fmt.Sprintf("round %d: the %s stage's %s %q was refused: %v", status.Round, workerType, refused.env, refused.url, refused.err),
		})
		return nil, 0, nil
	}
	if block != nil || err != nil {
		return block, 0, err
	}
	if _, err := c.kubeClient.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Creating pod %s: %v", pod.Name, err)
		return nil, 0, fmt.Errorf("creating pod %s/%s: %w", job.Namespace, pod.Name, err)
	} else if err == nil {
		if last != nil {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "StagePodRetried", "Created pod %s, try %d of %d, after pod %s failed: %s",
				pod.Name, attempt, maxStageAttempts, last.Name, podFailure(last))
		} else {
			c.recorder.Eventf(job, corev1.EventTypeNormal, "Created", "Created pod %s", pod.Name)
		}
	}
	advanceState(status, sednav1.StageStarting)
	return nil, 0, nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// podFailure says why a pod failed, as far as its status tells.
func podFailure(pod *corev1.Pod) string {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range statuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("container %s exited with %d (%s)", s.Name, t.ExitCode, t.Reason)
			}
		}
	}
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		return strings.TrimSpace(pod.Status.Reason + " " + pod.Status.Message)
	}
	return "phase Failed"
}

// refusal is a location in the LC's stage input that lies outside what the job declares.
type refusal struct {
	env, url string
	err      error
}

// scopeOf is what the job itself declares its stage pods may be given: its outputDir, its
// Dataset's URL and the directory of that index, and its Models' URLs. Every location the LC
// reports must lie within it: the LC relays what workers on the node's network told it.
func scopeOf(job *sednav1.IncrementalLearningJob, refs references) workers.Scope {
	var scope workers.Scope
	scope.DeclareTree(job.Spec.OutputDir)
	if refs.dataset != nil {
		scope.Declare(refs.dataset.Spec.URL)
		scope.DeclareTreeOf(refs.dataset.Spec.URL)
	}
	for _, m := range refs.models {
		scope.Declare(m.Spec.URL)
		scope.DeclareTree(m.Spec.URL)
	}
	return scope
}

// checkInput returns the first location of the stage input outside the job's scope, by the env
// var it would have become.
func checkInput(scope workers.Scope, input stageInput, workerType string) *refusal {
	type reported struct{ env, url string }
	var urls []reported
	if workerType == trainWorkerType {
		if len(input.Models) > 0 {
			urls = append(urls, reported{"BASE_MODEL_URL", input.Models[0].URL})
		}
		urls = append(urls, reported{"MODEL_URL", input.OutputDir}, reported{"TRAIN_DATASET_URL", input.DataURL})
	} else {
		for _, m := range input.Models {
			urls = append(urls, reported{"MODEL_URLS", m.URL})
		}
		urls = append(urls, reported{"TEST_DATASET_URL", input.DataURL})
	}
	if input.DataIndexURL != "" {
		urls = append(urls, reported{"ORIGINAL_DATASET_URL", input.DataIndexURL})
	}
	for _, u := range urls {
		if u.url == "" {
			continue // missing inputs are InvalidSpec below
		}
		if err := scope.Check(u.url); err != nil {
			return &refusal{env: u.env, url: u.url, err: err}
		}
	}
	return nil
}

// desiredStagePod builds the pod of the current stage from the stage's input in status.stageData.
// A location in the input outside the job's scope is refused: no pod is built from it.
func (c *Controller) desiredStagePod(ctx context.Context, job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus,
	refs references, workerType string, attempt int) (*corev1.Pod, *blocker, *refusal, error) {
	input, err := stageInputOf(status)
	if err != nil {
		return nil, &blocker{reasonInvalidSpec, fmt.Sprintf("round %d: %v", status.Round, err)}, nil, nil
	}
	if refused := checkInput(scopeOf(job, refs), input, workerType); refused != nil {
		return nil, nil, refused, nil
	}
	ds := refs.dataset
	originalURL, originalSecret := ds.Spec.URL, ds.Spec.CredentialName
	if input.DataIndexURL != "" {
		// Upstream: the LC's index of the samples (an s3 dataset's), read with the dataset's secret.
		originalURL = input.DataIndexURL
	}
	original, block, err := c.locate(ctx, job, originalURL, originalSecret, "dataset "+ds.Name)
	if block != nil || err != nil {
		return nil, block, nil, err
	}
	data, block, err := c.locate(ctx, job, input.DataURL, job.Spec.CredentialName, "the job's credentialName")
	if block != nil || err != nil {
		return nil, block, nil, err
	}
	var pod *corev1.Pod
	var buildErr error
	if workerType == trainWorkerType {
		if len(input.Models) == 0 || input.OutputDir == "" || input.DataURL == "" {
			return nil, &blocker{reasonInvalidSpec, fmt.Sprintf("round %d: the train input lacks a model, data or output directory", status.Round)}, nil, nil
		}
		initial := refs.models[job.Spec.InitialModel.Name]
		baseSecret := job.Spec.CredentialName
		if input.Models[0].URL == initial.Spec.URL {
			baseSecret = initial.Spec.CredentialName
		}
		base, block, err := c.locate(ctx, job, input.Models[0].URL, baseSecret, "the base model")
		if block != nil || err != nil {
			return nil, block, nil, err
		}
		output, block, err := c.locate(ctx, job, input.OutputDir, job.Spec.CredentialName, "the job's credentialName")
		if block != nil || err != nil {
			return nil, block, nil, err
		}
		pod, buildErr = trainPod(job, trainInput{round: status.Round, attempt: attempt, baseModel: base, outputDir: output,
			trainData: data, originalDataset: original}, c.lcServer)
	} else {
		if len(input.Models) == 0 || input.DataURL == "" {
			return nil, &blocker{reasonInvalidSpec, fmt.Sprintf("round %d: the eval input lacks models or data", status.Round)}, nil, nil
		}
		models := make([]location, 0, len(input.Models))
		for _, m := range input.Models {
			secret := job.Spec.CredentialName
			for _, known := range refs.models {
				if known.Spec.URL == m.URL {
					secret = known.Spec.CredentialName
				}
			}
			loc, block, err := c.locate(ctx, job, m.URL, secret, "model "+m.URL)
			if block != nil || err != nil {
				return nil, block, nil, err
			}
			models = append(models, loc)
		}
		// Upstream gives the eval data the dataset's credentials.
		data.credentials = original.credentials
		pod, buildErr = evalPod(job, evalInput{round: status.Round, attempt: attempt, models: models, testData: data,
			originalDataset: original}, c.lcServer)
	}
	if buildErr != nil {
		return nil, &blocker{reasonInvalidSpec, buildErr.Error()}, nil, nil
	}
	return pod, nil, nil, nil
}

// stageInputOf reads the current stage's input from status.stageData.
func stageInputOf(status *sednav1.ILJobStatus) (stageInput, error) {
	var data struct {
		Input *stageInput `json:"input"`
	}
	if status.StageData == "" {
		return stageInput{}, errors.New("the LC sent no stage input")
	}
	if err := json.Unmarshal([]byte(status.StageData), &data); err != nil {
		return stageInput{}, fmt.Errorf("reading the stage input: %w", err)
	}
	if data.Input == nil {
		return stageInput{}, errors.New("the LC sent no stage input")
	}
	return *data.Input, nil
}

// deleteOldRoundPods removes the stage pods of rounds before round: their stage is over, and
// keeping every round's pods would grow without bound. The current round's pods stay for logs.
func (c *Controller) deleteOldRoundPods(ctx context.Context, job *sednav1.IncrementalLearningJob, round int32) error {
	if round <= 1 {
		return nil
	}
	pods, err := c.pods.Pods(job.Namespace).List(labels.SelectorFromSet(workers.OwnerSelector(ownerOf(job))))
	if err != nil {
		return fmt.Errorf("listing the pods of incremental learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	var errs []error
	for _, pod := range pods {
		n, err := strconv.Atoi(pod.Labels[roundLabel])
		if err != nil || int32(n) >= round || pod.DeletionTimestamp != nil || !workers.IsControlledBy(pod, ownerOf(job)) {
			continue
		}
		err = c.kubeClient.CoreV1().Pods(job.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting pod %s/%s of round %d: %w", job.Namespace, pod.Name, n, err))
		}
	}
	return errors.Join(errs...)
}
