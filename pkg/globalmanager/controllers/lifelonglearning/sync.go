package lifelonglearning

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
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

func (c *Controller) settings() settings {
	return settings{lcServer: c.lcServer, kbServer: c.kbServer, kbSecret: c.kbSecret}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	logger := klog.FromContext(ctx)
	cached, err := c.lister.LifelongLearningJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The pods and the inference Deployment go with the job through their owner references.
		c.unpublish(namespace, name)
		c.pending.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting lifelong learning job %s: %w", key, err)
	}
	var block *staged.Blocker
	dataset, err := c.datasetLister.Datasets(namespace).Get(cached.Spec.Dataset.Name)
	node := ""
	if err != nil {
		dataset = nil
		block = &staged.Blocker{Reason: reasonDatasetNotFound, Message: fmt.Sprintf("dataset %q not found", cached.Spec.Dataset.Name)}
	} else {
		node = dataset.Spec.NodeName
	}
	if cached.DeletionTimestamp != nil {
		// The garbage collector is removing the workers; nothing to converge or create.
		return c.publish(cached, node, c.tokens.CachedWorkerToken(ownerOf(cached)))
	}
	token, err := c.tokens.Ensure(ctx, ownerOf(cached))
	if errors.Is(err, runtime.ErrWorkerTokenConflict) {
		if block == nil {
			block = &staged.Blocker{Reason: reasonWorkerTokenConflict, Message: err.Error()}
		}
	} else if err != nil {
		return err
	}
	if err := c.publish(cached, node, token); err != nil {
		return err
	}
	job := cached.DeepCopy()

	pending := c.pending.Take(key)
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
		if err := staged.ApplyReport(progressOf(status), report, job.Generation); err != nil {
			return err
		}
		kb, err := knowledgeBaseOf(report.Output)
		if err != nil {
			// The rest of the report stands; the knowledge base keeps its last good summary.
			c.recorder.Eventf(job, corev1.EventTypeWarning, reasonInvalidKnowledgeBase, "round %d, stage %s: %v", report.Round, report.Stage, err)
		} else if kb != nil {
			status.KnowledgeBase = withKnownCounts(kb, status.KnowledgeBase)
		}
	}

	var errs []error
	var inference *appsv1.Deployment
	if block == nil {
		inference, block, err = c.convergeInference(ctx, job, status)
		errs = append(errs, err)
	}
	if block == nil {
		var retryAfter time.Duration
		block, retryAfter, err = c.convergeStage(ctx, job, status, dataset)
		errs = append(errs, err)
		if retryAfter > 0 {
			c.queue.AddAfter(key, retryAfter)
		}
		errs = append(errs, c.stager().DeleteOldRoundPods(ctx, ownerOf(job), status.Round))
	}
	if block != nil {
		logger.V(2).Info("Lifelong learning job blocked", "job", klog.KObj(job), "reason", block.Reason, "message", block.Message)
		c.queue.AddAfter(key, c.blockedRetry)
		if inference == nil {
			inference = c.deploymentKeeper().Owned(ownerOf(job), inferenceDeploymentName(job))
		}
	}
	setConditions(job, status, block, inference)
	staged.RecordTransitions(c.recorder, job, progressOf(&job.Status), progressOf(status), warningReady...)
	convergeErr := errors.Join(errs...)
	if equality.Semantic.DeepEqual(&job.Status, status) {
		c.pending.Done(key, len(pending))
		return convergeErr
	}
	job.Status = *status
	updated, err := c.client.SednaV1alpha1().LifelongLearningJobs(namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return errors.Join(convergeErr, fmt.Errorf("updating the status of lifelong learning job %s: %w", key, err))
	}
	c.pending.Done(key, len(pending))
	logger.V(4).Info("Updated lifelong learning status", "job", klog.KObj(job), "stage", status.Stage,
		"state", status.StageState, "round", status.Round)
	// The LC learns Starting, Running and Failed from the status: send it now rather than
	// after the informer's round trip.
	if err := c.publish(updated, node, token); err != nil {
		return errors.Join(convergeErr, err)
	}
	return convergeErr
}

// locate returns how a worker reaches u: for s3:// URLs with a credential Secret, the Secret's
// endpoint and keys (by reference). Other URLs need no credentials.
func (c *Controller) locate(ctx context.Context, job *sednav1.LifelongLearningJob, u, secretName, usedBy string) (location, *staged.Blocker, error) {
	creds, blocker, err := runtime.S3CredentialsFor(ctx, c.kubeClient, job.Namespace, u, secretName, usedBy)
	return location{url: u, credentials: creds}, blocker, err
}

// convergeInference keeps the inference worker once a round was deployed (before, there is no
// index to serve: upstream creates the worker on the first Deploy). A newly deployed round
// changes its template, which rolls the worker onto the new index.
func (c *Controller) convergeInference(ctx context.Context, job *sednav1.LifelongLearningJob, status *sednav1.LLJobStatus) (*appsv1.Deployment, *staged.Blocker, error) {
	existing := c.deploymentKeeper().Owned(ownerOf(job), inferenceDeploymentName(job))
	round := staged.DeployedRound(&status.LearningProgress, existing)
	if round == 0 {
		return existing, nil, nil
	}
	output, block, err := c.locate(ctx, job, job.Spec.OutputDir, job.Spec.CredentialName, "the job's credentialName")
	if block != nil || err != nil {
		return existing, block, err
	}
	desired, err := inferenceDeployment(job, output, c.settings(), round)
	if err != nil {
		return existing, &staged.Blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("building the inference worker: %v", err)}, nil
	}
	written, err := c.deploymentKeeper().Converge(ctx, ownerOf(job), job, desired)
	return written, nil, err
}

// convergeStage keeps the pod of the current Train or Eval stage (staged.Stager.Converge); the
// LC deploys by itself.
func (c *Controller) convergeStage(ctx context.Context, job *sednav1.LifelongLearningJob, status *sednav1.LLJobStatus,
	dataset *sednav1.Dataset) (*staged.Blocker, time.Duration, error) {
	var workerType string
	switch status.Stage {
	case sednav1.StageTrain:
		workerType = trainWorkerType
	case sednav1.StageEval:
		workerType = evalWorkerType
	default:
		return nil, 0, nil
	}
	return c.stager().Converge(ctx, staged.Stage{
		Owner: ownerOf(job), Job: job, WorkerType: workerType, Node: dataset.Spec.NodeName,
		Build: func(ctx context.Context, attempt int) (*corev1.Pod, *staged.Blocker, *staged.Refusal, error) {
			return c.desiredStagePod(ctx, job, status, dataset, workerType, attempt)
		},
	}, progressOf(status))
}

// scopeOf is what the job itself declares its stage pods may be given: its outputDir and its
// Dataset's URL and the directory of that index.
func scopeOf(job *sednav1.LifelongLearningJob, dataset *sednav1.Dataset) workers.Scope {
	var scope workers.Scope
	scope.DeclareTree(job.Spec.OutputDir)
	scope.Declare(dataset.Spec.URL)
	scope.DeclareTreeOf(dataset.Spec.URL)
	return scope
}

// isKBURL tells whether raw is a URL of the configured knowledge base's API (its download links
// carry a query, which workers.Scope refuses): same scheme and host, below "<base>/knowledgebase/",
// no user info, fragment or ".." element.
func isKBURL(raw, kbServer string) bool {
	if kbServer == "" {
		return false
	}
	u, err := url.Parse(raw)
	kb, kbErr := url.Parse(kbServer)
	if err != nil || kbErr != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if !strings.EqualFold(u.Scheme, kb.Scheme) || !strings.EqualFold(u.Host, kb.Host) {
		return false
	}
	if slices.Contains(strings.Split(u.Path, "/"), "..") || u.RawPath != "" {
		return false
	}
	base := path.Join("/", kb.Path, "knowledgebase") + "/"
	return strings.HasPrefix(u.Path, base)
}

// checkInput returns the first location of the stage input that is neither within the job's
// scope nor the knowledge base's, by the env var it would have become.
func (c *Controller) checkInput(scope workers.Scope, input staged.StageInput, workerType string) *staged.Refusal {
	type reported struct{ env, url string }
	var urls []reported
	if workerType == trainWorkerType {
		if len(input.Models) > 0 {
			urls = append(urls, reported{"CLOUD_KB_INDEX", input.Models[0].URL})
		}
		urls = append(urls, reported{"OUTPUT_URL", input.OutputDir}, reported{"TRAIN_DATASET_URL", input.DataURL})
	} else {
		for _, m := range input.Models {
			urls = append(urls, reported{"MODEL_URLS", m.URL})
		}
		urls = append(urls, reported{"OUTPUT_URL", input.OutputDir}, reported{"TEST_DATASET_URL", input.DataURL})
	}
	if input.DataIndexURL != "" {
		urls = append(urls, reported{"ORIGINAL_DATASET_URL", input.DataIndexURL})
	}
	for _, u := range urls {
		if u.url == "" || isKBURL(u.url, c.kbServer) {
			continue // missing inputs are InvalidSpec below
		}
		if err := scope.Check(u.url); err != nil {
			return &staged.Refusal{Env: u.env, URL: u.url, Err: err}
		}
	}
	return nil
}

// cloudIndex is the KB index the last completed training wrote: the Train/Ready input's first
// model (the LC keeps it), else the newest round in the history that names one.
func cloudIndex(status *sednav1.LLJobStatus, input staged.StageInput) string {
	if len(input.Models) > 0 && input.Models[0].URL != "" {
		return input.Models[0].URL
	}
	for i := len(status.Rounds) - 1; i >= 0; i-- {
		if r := status.Rounds[i]; r.Round < status.Round && r.Model != "" && r.Stage != sednav1.StageTrain {
			return r.Model
		}
	}
	return ""
}

// desiredStagePod builds the pod of the current stage from the stage's input in status.stageData.
// A location in the input outside the job's scope is refused: no pod is built from it.
func (c *Controller) desiredStagePod(ctx context.Context, job *sednav1.LifelongLearningJob, status *sednav1.LLJobStatus,
	dataset *sednav1.Dataset, workerType string, attempt int) (*corev1.Pod, *staged.Blocker, *staged.Refusal, error) {
	input, err := staged.StageInputOf(&status.LearningProgress)
	if err != nil {
		return nil, &staged.Blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("round %d: %v", status.Round, err)}, nil, nil
	}
	if refused := c.checkInput(scopeOf(job, dataset), input, workerType); refused != nil {
		return nil, nil, refused, nil
	}
	originalURL := dataset.Spec.URL
	if input.DataIndexURL != "" {
		originalURL = input.DataIndexURL // the LC's index of an s3 dataset's samples
	}
	original, block, err := c.locate(ctx, job, originalURL, dataset.Spec.CredentialName, "dataset "+dataset.Name)
	if block != nil || err != nil {
		return nil, block, nil, err
	}
	data, block, err := c.locate(ctx, job, input.DataURL, job.Spec.CredentialName, "the job's credentialName")
	if block != nil || err != nil {
		return nil, block, nil, err
	}
	output, block, err := c.locate(ctx, job, input.OutputDir, job.Spec.CredentialName, "the job's credentialName")
	if block != nil || err != nil {
		return nil, block, nil, err
	}
	if input.OutputDir == "" || input.DataURL == "" {
		return nil, &staged.Blocker{Reason: reasonInvalidSpec,
			Message: fmt.Sprintf("round %d: the %s input lacks data or an output directory", status.Round, strings.ToLower(workerType))}, nil, nil
	}
	var pod *corev1.Pod
	if workerType == trainWorkerType {
		pod, err = trainPod(job, trainInput{round: status.Round, attempt: attempt, cloudIndex: cloudIndex(status, input),
			outputDir: output, trainData: data, originalDataset: original}, c.settings())
	} else {
		if len(input.Models) == 0 {
			return nil, &staged.Blocker{Reason: reasonInvalidSpec, Message: fmt.Sprintf("round %d: the eval input names no model", status.Round)}, nil, nil
		}
		models := make([]location, 0, len(input.Models))
		for _, m := range input.Models {
			loc, block, err := c.locate(ctx, job, m.URL, job.Spec.CredentialName, "the job's credentialName")
			if block != nil || err != nil {
				return nil, block, nil, err
			}
			models = append(models, loc)
		}
		pod, err = evalPod(job, evalInput{round: status.Round, attempt: attempt, models: models, outputDir: output,
			testData: data, originalDataset: original}, c.settings())
	}
	if err != nil {
		return nil, &staged.Blocker{Reason: reasonInvalidSpec, Message: err.Error()}, nil, nil
	}
	return pod, nil, nil, nil
}
