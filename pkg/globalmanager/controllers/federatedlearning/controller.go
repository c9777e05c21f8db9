package federatedlearning

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednalisters "github.com/sedna-go/sedna/pkg/client/listers/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Name is the feature's name in the registry.
const Name = "FederatedLearning"

// Kind is the channel kind of FederatedLearningJobs.
const Kind = "federatedlearningjob"

// Controller reconciles FederatedLearningJobs.
type Controller struct {
	client        sednaclientset.Interface
	kubeClient    kubernetes.Interface
	lister        sednalisters.FederatedLearningJobLister
	modelLister   sednalisters.ModelLister
	datasetLister sednalisters.DatasetLister
	pods          corelisters.PodLister
	services      corelisters.ServiceLister
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	// enqueueOwner enqueues the job controlling a child (runtime.EnqueueController).
	enqueueOwner func(child metav1.Object)
	downstream   runtime.NodeCopiesDownstream
	metrics      *runtime.SyncMetrics
	tokens       *runtime.WorkerTokens
	recorder     record.EventRecorder
	lcServer     string

	// Test seams: the clock and how long a blocked job waits before the next look.
	now          func() time.Time
	blockedRetry time.Duration

	reportsMu sync.Mutex
	// reports are the training workers' progress per job (namespace/name).
	reports map[string]*jobReports
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller. It registers the pod and Service informers of the kube factory (so
// that the manager starts them) and enqueues a job when one of its workers, its Service, its
// worker-token Secret, its Models or its Datasets change.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	downstream, ok := deps.Downstream.(runtime.NodeCopiesDownstream)
	if !ok {
		return nil, fmt.Errorf("the federated learning controller sends each training node its own copy of a job: downstream %T cannot", deps.Downstream)
	}
	informer := deps.SednaInformers.Sedna().V1alpha1().FederatedLearningJobs()
	modelInformer := deps.SednaInformers.Sedna().V1alpha1().Models()
	datasetInformer := deps.SednaInformers.Sedna().V1alpha1().Datasets()
	// Only the jobs' workers are cached, by their labels.
	children := deps.ChildInformerFactory(KindName)
	podInformer := children.Core().V1().Pods()
	serviceInformer := children.Core().V1().Services()
	tokenInformer := deps.WorkerTokenInformers.Core().V1().Secrets()
	recorder := deps.Recorder
	if recorder == nil {
		recorder = &record.FakeRecorder{} // drops events: no channel
	}
	c := &Controller{
		client: deps.SednaClient, kubeClient: deps.KubeClient, lister: informer.Lister(),
		modelLister: modelInformer.Lister(), datasetLister: datasetInformer.Lister(),
		pods: podInformer.Lister(), services: serviceInformer.Lister(),
		synced: []cache.InformerSynced{
			informer.Informer().HasSynced, modelInformer.Informer().HasSynced, datasetInformer.Informer().HasSynced,
			podInformer.Informer().HasSynced, serviceInformer.Informer().HasSynced, tokenInformer.Informer().HasSynced,
		},
		queue: runtime.NewQueue(Name), downstream: downstream,
		metrics:  runtime.NewSyncMetrics(deps.Metrics, "federatedlearning"),
		tokens:   runtime.NewWorkerTokens(deps.KubeClient, tokenInformer.Lister()),
		recorder: recorder, lcServer: deps.LCServer,
		now: time.Now, blockedRetry: 30 * time.Second,
		reports: map[string]*jobReports{},
	}
	c.enqueueOwner = runtime.EnqueueController(c.queue, KindName, c.ownerUID)
	owned := runtime.ChangeHandler(c.enqueueOwner)
	err := runtime.AddWatches(
		runtime.Watch{What: "federated learning jobs", Informer: informer.Informer(), Handler: runtime.EnqueueHandler(c.queue)},
		runtime.Watch{What: "models", Informer: modelInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueModelUsers)},
		runtime.Watch{What: "datasets", Informer: datasetInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueDatasetUsers)},
		// The worker pods, the Service and the token Secret are controlled by the job: a deleted one
		// is created again, a pod's phase changes the status, its IP what the nodes' LCs are told.
		runtime.Watch{What: "pods", Informer: podInformer.Informer(), Handler: owned},
		runtime.Watch{What: "services", Informer: serviceInformer.Informer(), Handler: owned},
		runtime.Watch{What: "worker-token secrets", Informer: tokenInformer.Informer(), Handler: owned},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ownerUID is the UID of the named job, for runtime.EnqueueController.
func (c *Controller) ownerUID(namespace, name string) (types.UID, bool) {
	job, err := c.lister.FederatedLearningJobs(namespace).Get(name)
	if err != nil {
		return "", false
	}
	return job.UID, true
}

func (c *Controller) enqueueModelUsers(m metav1.Object) {
	c.enqueueUsers(m.GetNamespace(), func(job *sednav1.FederatedLearningJob) bool {
		return job.Spec.AggregationWorker.Model.Name == m.GetName() ||
			(job.Spec.PretrainedModel != nil && job.Spec.PretrainedModel.Name == m.GetName())
	})
}

func (c *Controller) enqueueDatasetUsers(ds metav1.Object) {
	c.enqueueUsers(ds.GetNamespace(), func(job *sednav1.FederatedLearningJob) bool {
		return slices.ContainsFunc(job.Spec.TrainingWorkers, func(w sednav1.TrainingWorker) bool { return w.Dataset.Name == ds.GetName() })
	})
}

func (c *Controller) enqueueUsers(namespace string, uses func(*sednav1.FederatedLearningJob) bool) {
	jobs, err := c.lister.FederatedLearningJobs(namespace).List(labels.Everything())
	if err != nil {
		return // a lister List only fails on a bad selector
	}
	for _, job := range jobs {
		if uses(job) {
			c.queue.Add(job.Namespace + "/" + job.Name)
		}
	}
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync, c.synced...)
}

// PrimeDownstream implements runtime.DownstreamPrimer: every job goes to its training nodes.
func (c *Controller) PrimeDownstream(context.Context) error {
	return runtime.PublishAll("federated learning jobs", c.lister.List, func(job *sednav1.FederatedLearningJob) error {
		return c.publish(job, c.tokens.CachedWorkerToken(ownerOf(job)))
	})
}

// workerPods are the pods the job controls.
func (c *Controller) workerPods(job *sednav1.FederatedLearningJob) ([]*corev1.Pod, error) {
	pods, err := c.pods.Pods(job.Namespace).List(labels.SelectorFromSet(workers.OwnerSelector(ownerOf(job))))
	if err != nil {
		return nil, fmt.Errorf("listing the pods of federated learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return slices.DeleteFunc(pods, func(p *corev1.Pod) bool { return !workers.IsControlledBy(p, ownerOf(job)) }), nil
}

// trainingNodes are the distinct nodes of the job's training workers: each template's nodeName
// (upstream's routing) and the node each training pod was scheduled to (a template placing its
// worker by selector or affinity has none).
func trainingNodes(job *sednav1.FederatedLearningJob, pods []*corev1.Pod) []string {
	var nodes []string
	for _, w := range job.Spec.TrainingWorkers {
		nodes = append(nodes, w.Template.Spec.NodeName)
	}
	for _, pod := range pods {
		if pod.Labels[workerTypeLabel] == trainWorkerType {
			nodes = append(nodes, pod.Spec.NodeName)
		}
	}
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == "" })
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// publish sends the job to the LC of each training node. Each node's copy carries the SHA-256 of
// the job's worker token (token "" sends none) and the job's workers on that node with their pod
// IPs (contract C1), so that the LC takes reports only from them; these annotations are never
// written to the API server. The version is raised to the newest of the pods' resourceVersions
// so that a pod change reaches the LCs.
func (c *Controller) publish(job *sednav1.FederatedLearningJob, token string) error {
	key := runtime.Key(Kind, job.Namespace, job.Name)
	pods, err := c.workerPods(job)
	if err != nil {
		return err
	}
	copies := map[string][]byte{}
	var version uint64
	for _, node := range trainingNodes(job, pods) {
		nodeWorkers, podsVersion := runtime.NodeWorkers(pods, node, workerTypeLabel)
		copied := job.DeepCopy()
		copied.Annotations, err = runtime.WorkerAuth{Token: token, Workers: nodeWorkers}.Annotate(copied.Annotations)
		if err != nil {
			return fmt.Errorf("publishing federated learning job %s/%s: %w", job.Namespace, job.Name, err)
		}
		data, jobVersion, err := runtime.EncodeForLC(copied, &copied.TypeMeta, KindName)
		if err != nil {
			return err
		}
		copies[node] = data
		version = max(version, jobVersion, podsVersion)
	}
	if len(copies) == 0 {
		c.downstream.Unpublish(key)
		return nil
	}
	c.downstream.PublishEach(key, version, copies)
	return nil
}

// errNoTrainingWorkers is a spec the API server should have refused (minItems 1).
var errNoTrainingWorkers = errors.New("the job has no training workers")
