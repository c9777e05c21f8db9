package incrementallearning

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
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
			block = &blocker{Reason: reasonWorkerTokenConflict, Message: err.Error()}
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
		logger.V(2).Info("Incremental learning job blocked", "job", klog.KObj(job), "reason", block.Reason, "message", block.Message)
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
		return refs, &blocker{Reason: reasonDatasetNotFound, Message: fmt.Sprintf("dataset %q not found", job.Spec.Dataset.Name)}
	}
	refs.dataset = ds
	for _, name := range modelNames(job) {
		m, err := c.modelLister.Models(job.Namespace).Get(name)
		if err != nil {
			return refs, &blocker{Reason: reasonModelNotFound, Message: fmt.Sprintf("model %q not found", name)}
		}
		refs.models[name] = m
	}
	return refs, nil
}

// locate returns how a worker reaches url: for s3:// URLs with a credential Secret, the Secret's
// endpoint and keys (by reference). Other URLs need no credentials.
func (c *Controller) locate(ctx context.Context, job *sednav1.IncrementalLearningJob, url, secretName, usedBy string) (location, *blocker, error) {
	creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, job.Namespace, url, secretName, usedBy)
	return location{url: url, credentials: creds}, block, err
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
		round = staged.DeployedRound(&status.LearningProgress, existing)
	}
	desired, err := inferenceDeployment(job, loc, c.lcServer, round)
	if err != nil {
		return existing, &blocker{Reason: reasonInvalidSpec, Message: err.Error()}, nil
	}
	written, err := c.convergeDeployment(ctx, job, desired)
	return written, nil, err
}

func (c *Controller) ownedDeployment(job *sednav1.IncrementalLearningJob, name string) *appsv1.Deployment {
	return c.deploymentKeeper().Owned(ownerOf(job), name)
}

func (c *Controller) convergeDeployment(ctx context.Context, job *sednav1.IncrementalLearningJob, desired *appsv1.Deployment) (*appsv1.Deployment, error) {
	return c.deploymentKeeper().Converge(ctx, ownerOf(job), job, desired)
}

func (c *Controller) deploymentKeeper() *staged.Deployments {
	return &staged.Deployments{KubeClient: c.kubeClient, Lister: c.deployments, Recorder: c.recorder, Description: "incremental learning job"}
}

// convergeStage keeps the pod of the current Train or Eval stage (staged.Stager.Converge); the
// LC deploys by itself. It returns how long to wait before a retry.
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
	return c.stager().Converge(ctx, staged.Stage{
		Owner: ownerOf(job), Job: job, WorkerType: workerType, Node: refs.dataset.Spec.NodeName,
		Build: func(ctx context.Context, attempt int) (*corev1.Pod, *blocker, *refusal, error) {
			return c.desiredStagePod(ctx, job, status, refs, workerType, attempt)
		},
	}, progressOf(status))
}

// refusal is a location in the LC's stage input that lies outside what the job declares.
type refusal = staged.Refusal

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
			return &refusal{Env: u.env, URL: u.url, Err: err}
		}
	}
	return nil
}

// desiredStagePod builds the pod of the current stage from the stage's input in status.stageData.
// A location in the input outside the job's scope is refused: no pod is built from it.
func (c *Controller) desiredStagePod(ctx context.Context, job *sednav1.IncrementalLearningJob, status *sednav1.ILJobStatus,
	refs references, workerType string, attempt int) (*corev1.Pod, *blocker, *refusal, error) {
	input, err := staged.StageInputOf(&status.LearningProgress)
	if err != nil {
		return nil, &blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("round %d: %v", status.Round, err)}, nil, nil
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
			return nil, &blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("round %d: the train input lacks a model, data or output directory", status.Round)}, nil, nil
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
			return nil, &blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("round %d: the eval input lacks models or data", status.Round)}, nil, nil
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
		return nil, &blocker{Reason: reasonInvalidSpec, Message: buildErr.Error()}, nil, nil
	}
	return pod, nil, nil, nil
}

// deleteOldRoundPods removes the stage pods of rounds before round.
func (c *Controller) deleteOldRoundPods(ctx context.Context, job *sednav1.IncrementalLearningJob, round int32) error {
	return c.stager().DeleteOldRoundPods(ctx, ownerOf(job), round)
}
