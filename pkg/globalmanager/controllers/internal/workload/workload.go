// Package workload is the controller shared by the multi-edge kinds (VideoAnalyticsJob,
// FeatureExtractionService, ReidJob, ObjectSearchService, ObjectTrackingService): a resource that
// owns Deployments, Services and bare pods built from its spec. A kind supplies a pure builder
// (spec → runtime.Desired) and how its status is written; this package does the rest once:
// informers and queue, the worker token, publishing the resource with its workers to the nodes
// they run on (so the LC's worker API takes their reports), Model references, converging the
// children (runtime.Children.Converge), status through the subresource, events on transitions
// and the workers' reports.
package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	sednalisters "github.com/sedna-go/sedna/pkg/client/listers/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workerreports"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Reasons for problems in what a resource refers to; while one holds, no child is converged.
const (
	ReasonModelNotFound       = "ModelNotFound"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonWorkerTokenConflict = "WorkerTokenConflict"
)

// Object is a Sedna resource as the shared controller handles it.
type Object interface {
	metav1.Object
	k8sruntime.Object
}

// Model is what a worker needs of a Model: its name, URL and, for s3:// URLs, credentials.
type Model struct {
	Name        string
	URL         string
	Credentials *workers.S3Credentials
}

// BuildInput is what a builder computes the children from.
type BuildInput[T Object] struct {
	Object T
	Owner  workers.Owner
	// Models are the resolved Models of ModelNames, by name.
	Models map[string]Model
	// LCServer is GM's configured LC URL (workers.LCServerEnv).
	LCServer string
	// Pods are the owner's pods (a job's attempts).
	Pods []*corev1.Pod
}

// StatusInput is what a status is computed from.
type StatusInput struct {
	Now   metav1.Time
	Block *runtime.Blocker
	// Deployments and Pods are the owner's children by name: as converged, or as cached.
	Deployments runtime.Observed
	Pods        []*corev1.Pod
	// Metrics are the workers' latest reported values; nil when none reported.
	Metrics []sednav1.Metric
}

// Kind is one multi-edge kind as the shared controller needs it.
type Kind[T Object] struct {
	// Name is the feature's registry name, Metrics its metrics subsystem, KindName its API kind,
	// Description its kind in messages ("video analytics job").
	Name, Metrics, KindName, Description string
	// Informer returns the kind's informer and lister functions.
	Informer func(f sednainformers.SharedInformerFactory) (cache.SharedIndexInformer, Lister[T])
	// ModelNames are the Models the spec names.
	ModelNames func(obj T) []string
	// Build computes the desired children; an error is an invalid spec (Ready/Running False,
	// reason InvalidSpec).
	Build func(in BuildInput[T]) (runtime.Desired, error)
	// SetStatus writes the status of obj (a deep copy the controller owns) from in.
	SetStatus func(obj T, in StatusInput)
	// Conditions returns the status's conditions, for events on transitions.
	Conditions func(obj T) []metav1.Condition
	// Status returns the status for comparison.
	Status func(obj T) any
	// UpdateStatus writes obj's status through the subresource.
	UpdateStatus func(ctx context.Context, client sednaclientset.Interface, obj T) error
	// TemplateNodes are the nodes the spec places workers on by nodeName.
	TemplateNodes func(obj T) []string
	// TakesReports makes the controller a runtime.ReportReceiver for the kind.
	TakesReports bool
}

// Lister gets and lists the kind's objects from the informer's cache.
type Lister[T Object] struct {
	Get  func(namespace, name string) (T, error)
	List func(selector labels.Selector) ([]T, error)
}

// Controller reconciles the objects of one kind.
type Controller[T Object] struct {
	kind        Kind[T]
	channelKind string
	client      sednaclientset.Interface
	kubeClient  kubernetes.Interface
	lister      Lister[T]
	modelLister sednalisters.ModelLister
	deployments appslisters.DeploymentLister
	services    corelisters.ServiceLister
	pods        corelisters.PodLister
	tokens      *runtime.WorkerTokens
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	downstream  runtime.Downstream
	models      *runtime.Bindings
	metrics     *runtime.SyncMetrics
	recorder    record.EventRecorder
	lcServer    string
	// now is the clock of status times; a test seam.
	now          func() metav1.Time
	blockedRetry time.Duration

	reports *workerreports.Store
}

var (
	_ runtime.FeatureController = (*Controller[*sednav1.ReidJob])(nil)
	_ runtime.ReportReceiver    = (*Controller[*sednav1.ReidJob])(nil)
	_ runtime.DownstreamPrimer  = (*Controller[*sednav1.ReidJob])(nil)
)

// New builds the controller of kind from deps and registers its informers' handlers.
func New[T Object](kind Kind[T], deps runtime.Dependencies) (*Controller[T], error) {
	informer, lister := kind.Informer(deps.SednaInformers)
	modelInformer := deps.SednaInformers.Sedna().V1alpha1().Models()
	children := deps.ChildInformerFactory(kind.KindName)
	deploymentInformer := children.Apps().V1().Deployments()
	serviceInformer := children.Core().V1().Services()
	podInformer := children.Core().V1().Pods()
	tokenInformer := deps.WorkerTokenInformers.Core().V1().Secrets()
	recorder := deps.Recorder
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller[T]{
		kind: kind, channelKind: strings.ToLower(kind.KindName),
		client: deps.SednaClient, kubeClient: deps.KubeClient, lister: lister,
		modelLister: modelInformer.Lister(), deployments: deploymentInformer.Lister(),
		services: serviceInformer.Lister(), pods: podInformer.Lister(),
		tokens: runtime.NewWorkerTokens(deps.KubeClient, tokenInformer.Lister()),
		synced: []cache.InformerSynced{
			informer.HasSynced, modelInformer.Informer().HasSynced, deploymentInformer.Informer().HasSynced,
			serviceInformer.Informer().HasSynced, podInformer.Informer().HasSynced, tokenInformer.Informer().HasSynced,
		},
		queue: runtime.NewQueue(kind.Name), downstream: deps.Downstream, models: deps.Models,
		metrics: runtime.NewSyncMetrics(deps.Metrics, kind.Metrics), recorder: recorder, lcServer: deps.LCServer,
		now: metav1.Now, blockedRetry: 30 * time.Second, reports: workerreports.NewStore(),
	}
	if c.models == nil {
		c.models = runtime.NewBindings()
	}
	enqueueOwner := runtime.EnqueueController(c.queue, kind.KindName, c.ownerUID)
	enqueueLabeled := runtime.EnqueueLabeled(c.queue, kind.KindName, c.ownerUID)
	owned := runtime.ChangeHandler(enqueueOwner)
	err := runtime.AddWatches(
		runtime.Watch{What: kind.Description + "s", Informer: informer, Handler: runtime.EnqueueHandler(c.queue)},
		runtime.Watch{What: "models", Informer: modelInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueModelUsers)},
		// Pods of Deployments belong to ReplicaSets: every worker pod is matched by its labels.
		runtime.Watch{What: "pods", Informer: podInformer.Informer(), Handler: runtime.ChangeHandler(enqueueLabeled)},
		runtime.Watch{What: "deployments", Informer: deploymentInformer.Informer(), Handler: owned},
		runtime.Watch{What: "services", Informer: serviceInformer.Informer(), Handler: owned},
		runtime.Watch{What: "worker-token secrets", Informer: tokenInformer.Informer(), Handler: owned},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Controller[T]) ownerUID(namespace, name string) (types.UID, bool) {
	obj, err := c.lister.Get(namespace, name)
	if err != nil {
		return "", false
	}
	return obj.GetUID(), true
}

func (c *Controller[T]) enqueueModelUsers(m metav1.Object) {
	objects, err := c.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, obj := range objects {
		if obj.GetNamespace() == m.GetNamespace() && slices.Contains(c.kind.ModelNames(obj), m.GetName()) {
			c.queue.Add(obj.GetNamespace() + "/" + obj.GetName())
		}
	}
}

// Owner is obj as the owner of its workers.
func (c *Controller[T]) owner(obj T) workers.Owner {
	return workers.Owner{Object: obj, Kind: c.kind.KindName}
}

// Run implements runtime.FeatureController.
func (c *Controller[T]) Run(ctx context.Context, n int) {
	runtime.RunWorkers(ctx, c.kind.Name, c.queue, n, c.metrics, c.sync, c.synced...)
}

// PrimeDownstream implements runtime.DownstreamPrimer.
func (c *Controller[T]) PrimeDownstream(context.Context) error {
	return runtime.PublishAll(c.kind.Description+"s", c.lister.List, func(obj T) error {
		return c.publish(obj, c.tokens.CachedWorkerToken(c.owner(obj)))
	})
}

func (c *Controller[T]) ownerPods(obj T) ([]*corev1.Pod, error) {
	pods, err := c.pods.Pods(obj.GetNamespace()).List(labels.SelectorFromSet(workers.OwnerSelector(c.owner(obj))))
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s %s/%s: %w", c.kind.Description, obj.GetNamespace(), obj.GetName(), err)
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods, nil
}

// publish sends obj to the LC of every node its workers run on (the template's nodeName, or
// where a pod was scheduled), each copy naming that node's workers and the hash of the worker
// token, so the node's LC takes their reports (contract C1), and binds obj's Models there.
func (c *Controller[T]) publish(obj T, token string) error {
	key := runtime.Key(c.channelKind, obj.GetNamespace(), obj.GetName())
	pods, err := c.ownerPods(obj)
	if err != nil {
		return err
	}
	nodes := c.kind.TemplateNodes(obj)
	for _, pod := range pods {
		nodes = append(nodes, pod.Spec.NodeName)
	}
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == "" })
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	var modelKeys []channel.Key
	for _, name := range c.kind.ModelNames(obj) {
		modelKeys = append(modelKeys, runtime.Key("model", obj.GetNamespace(), name))
	}
	c.models.Set(key, modelKeys, nodes)
	if len(nodes) == 0 {
		c.downstream.Unpublish(key)
		return nil
	}
	workerTypeLabel := strings.ToLower(c.kind.KindName) + ".sedna.io/worker-type"
	copies := map[string][]byte{}
	var version uint64
	for _, node := range nodes {
		nodeWorkers, podsVersion := runtime.NodeWorkers(pods, node, workerTypeLabel)
		copied := obj.DeepCopyObject().(T)
		annotations, err := runtime.WorkerAuth{Token: token, Workers: nodeWorkers}.Annotate(copied.GetAnnotations())
		if err != nil {
			return fmt.Errorf("publishing %s %s/%s: %w", c.kind.Description, obj.GetNamespace(), obj.GetName(), err)
		}
		copied.SetAnnotations(annotations)
		data, objVersion, err := encodeForLC(copied, c.kind.KindName)
		if err != nil {
			return err
		}
		copies[node] = data
		version = max(version, objVersion, podsVersion)
	}
	if each, ok := c.downstream.(runtime.NodeCopiesDownstream); ok {
		each.PublishEach(key, version, copies)
		return nil
	}
	for node, data := range copies {
		c.downstream.Publish(key, version, data, node) // a Downstream without per-node copies: tests
	}
	return nil
}

// encodeForLC encodes obj for the LC with its apiVersion and kind set (informers strip them).
func encodeForLC(obj Object, kind string) ([]byte, uint64, error) {
	accessor, err := meta.TypeAccessor(obj)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding %s for the LC: %w", kind, err)
	}
	accessor.SetAPIVersion(sednav1.SchemeGroupVersion.String())
	accessor.SetKind(kind)
	return runtime.EncodeForLC(obj, &metav1.TypeMeta{}, kind)
}

func (c *Controller[T]) children(obj T, changes *runtime.ChildEvents) runtime.Children {
	return runtime.Children{Client: c.kubeClient, Recorder: c.recorder, Owner: c.owner(obj), Object: obj,
		Description: c.kind.Description, Changes: changes}
}

// resolveModels reads the Models the spec names and their credentials.
func (c *Controller[T]) resolveModels(ctx context.Context, obj T) (map[string]Model, *runtime.Blocker, error) {
	models := map[string]Model{}
	for _, name := range c.kind.ModelNames(obj) {
		m, err := c.modelLister.Models(obj.GetNamespace()).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, &runtime.Blocker{Reason: ReasonModelNotFound, Message: fmt.Sprintf("model %q not found", name)}, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("getting model %s/%s: %w", obj.GetNamespace(), name, err)
		}
		creds, block, err := runtime.S3CredentialsFor(ctx, c.kubeClient, obj.GetNamespace(), m.Spec.URL, m.Spec.CredentialName, fmt.Sprintf("model %q", name))
		if block != nil || err != nil {
			return nil, block, err
		}
		models[name] = Model{Name: name, URL: m.Spec.URL, Credentials: creds}
	}
	return models, nil, nil
}

func (c *Controller[T]) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	cached, err := c.lister.Get(namespace, name)
	if apierrors.IsNotFound(err) {
		channelKey := runtime.Key(c.channelKind, namespace, name)
		c.models.Set(channelKey, nil, nil)
		c.downstream.Unpublish(channelKey)
		c.forgetReports(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting %s %s: %w", c.kind.Description, key, err)
	}
	owner := c.owner(cached)
	if cached.GetDeletionTimestamp() != nil {
		return c.publish(cached, c.tokens.CachedWorkerToken(owner))
	}
	var block *runtime.Blocker
	token, err := c.tokens.Ensure(ctx, owner)
	if errors.Is(err, runtime.ErrWorkerTokenConflict) {
		block = &runtime.Blocker{Reason: ReasonWorkerTokenConflict, Message: err.Error()}
	} else if err != nil {
		return err
	}
	if err := c.publish(cached, token); err != nil {
		return err
	}
	obj := cached.DeepCopyObject().(T)
	pods, err := c.ownerPods(obj)
	if err != nil {
		return err
	}

	observed := runtime.Observed{}
	var convergeErr error
	if block == nil {
		var models map[string]Model
		models, block, err = c.resolveModels(ctx, obj)
		if err != nil {
			return err
		}
		if block == nil {
			desired, err := c.kind.Build(BuildInput[T]{Object: obj, Owner: owner, Models: models, LCServer: c.lcServer, Pods: pods})
			if err != nil {
				block = &runtime.Blocker{Reason: ReasonInvalidSpec, Message: err.Error()}
			} else {
				var changes runtime.ChildEvents
				observed, convergeErr = c.children(obj, &changes).Converge(ctx, runtime.ChildListers{
					Deployments: c.deployments, Services: c.services, Pods: c.pods,
				}, desired)
				changes.Record(c.recorder, obj)
			}
		}
	}
	if block != nil {
		klog.FromContext(ctx).V(2).Info("Blocked", "kind", c.kind.KindName, "object", klog.KObj(obj), "reason", block.Reason, "message", block.Message)
		c.queue.AddAfter(key, c.blockedRetry)
	}
	// What the status sees: the children as converged, else as cached.
	cachedDeployments, err := c.deployments.Deployments(namespace).List(labels.SelectorFromSet(workers.OwnerSelector(owner)))
	if err != nil {
		return errors.Join(convergeErr, fmt.Errorf("listing deployments: %w", err))
	}
	seen := runtime.Observed{Deployments: map[string]*appsv1.Deployment{}}
	for _, d := range cachedDeployments {
		if workers.IsControlledBy(d, owner) {
			seen.Deployments[d.Name] = d
		}
	}
	for n, d := range observed.Deployments {
		seen.Deployments[n] = d
	}
	podsNow := mergePods(pods, observed.Pods)

	in := StatusInput{Now: c.now(), Block: block, Deployments: seen, Pods: podsNow}
	if c.kind.TakesReports {
		in.Metrics = c.reportedMetrics(key, obj.GetUID(), pods)
	}
	c.kind.SetStatus(obj, in)
	c.recordTransitions(obj, c.kind.Conditions(cached), c.kind.Conditions(obj))
	if equality.Semantic.DeepEqual(c.kind.Status(cached), c.kind.Status(obj)) {
		return convergeErr
	}
	if err := c.kind.UpdateStatus(ctx, c.client, obj); err != nil {
		return errors.Join(convergeErr, fmt.Errorf("updating the status of %s %s: %w", c.kind.Description, key, err))
	}
	return convergeErr
}

// mergePods overlays the pods Converge saw or created on the cached list, by name.
func mergePods(cached []*corev1.Pod, converged map[string]*corev1.Pod) []*corev1.Pod {
	byName := map[string]*corev1.Pod{}
	for _, p := range cached {
		byName[p.Name] = p
	}
	for n, p := range converged {
		byName[n] = p
	}
	out := make([]*corev1.Pod, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// recordTransitions records an Event when Ready, Completed or Failed changes reason or status:
// once per change, not per sync.
func (c *Controller[T]) recordTransitions(obj T, old, updated []metav1.Condition) {
	for _, typ := range []string{sednav1.ConditionReady, sednav1.ConditionCompleted, sednav1.ConditionFailed} {
		now := meta.FindStatusCondition(updated, typ)
		if now == nil {
			continue
		}
		before := meta.FindStatusCondition(old, typ)
		if before != nil && before.Reason == now.Reason && before.Status == now.Status {
			continue
		}
		if before == nil && now.Status != metav1.ConditionTrue && typ != sednav1.ConditionReady {
			continue
		}
		eventType := corev1.EventTypeNormal
		switch {
		case typ == sednav1.ConditionFailed && now.Status == metav1.ConditionTrue,
			now.Reason == ReasonModelNotFound, now.Reason == ReasonInvalidSpec, now.Reason == ReasonWorkerTokenConflict,
			now.Reason == runtime.ReasonCredentialNotFound, now.Reason == runtime.ReasonInvalidCredential:
			eventType = corev1.EventTypeWarning
		}
		reason := now.Reason
		if typ == sednav1.ConditionCompleted {
			reason = "Completed"
		}
		c.recorder.Event(obj, eventType, reason, now.Message)
	}
}

// Sync converges one object by its "namespace/name" key, as the queue's workers do.
func (c *Controller[T]) Sync(ctx context.Context, key string) error { return c.sync(ctx, key) }

// SetClock replaces the clock of status times (tests).
func (c *Controller[T]) SetClock(now func() metav1.Time) { c.now = now }

// ShutDown stops the controller's queue (tests that never Run it).
func (c *Controller[T]) ShutDown() { c.queue.ShutDown() }
