package lifelonglearning

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednalisters "github.com/sedna-go/sedna/pkg/client/listers/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// Name is the feature's name in the registry.
const Name = "LifelongLearning"

// Kind is the channel kind of LifelongLearningJobs.
const Kind = "lifelonglearningjob"

// Controller reconciles LifelongLearningJobs.
type Controller struct {
	client        sednaclientset.Interface
	kubeClient    kubernetes.Interface
	lister        sednalisters.LifelongLearningJobLister
	datasetLister sednalisters.DatasetLister
	pods          corelisters.PodLister
	deployments   appslisters.DeploymentLister
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	// enqueueOwner enqueues the object controlling a child (runtime.EnqueueController).
	enqueueOwner func(child metav1.Object)
	// enqueueLabeled enqueues the job whose labels a pod carries (runtime.EnqueueLabeled).
	enqueueLabeled func(child metav1.Object)
	downstream     runtime.Downstream
	secrets        *runtime.Bindings
	metrics        *runtime.SyncMetrics
	reportMetrics  *reportMetrics
	tokens         *runtime.WorkerTokens
	// nodeChannel tells whether a node's LC is connected; nil counts every node as connected.
	nodeChannel runtime.NodeChannel
	recorder    record.EventRecorder
	lcServer    string
	kbServer    string
	kbSecret    string

	// Test seams: the clock, how long a blocked job waits before the next look, the retry delay.
	now          func() time.Time
	blockedRetry time.Duration
	retryDelay   time.Duration

	pending staged.Pending // namespace/name → stage reports not yet in the status
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller. It registers the pod and Deployment informers of the kube factory
// (so that the manager starts them) and enqueues a job when one of its workers or its Dataset
// changes.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	informer := deps.SednaInformers.Sedna().V1alpha1().LifelongLearningJobs()
	datasetInformer := deps.SednaInformers.Sedna().V1alpha1().Datasets()
	// Only the jobs' workers are cached, by their labels.
	children := deps.ChildInformerFactory(KindName)
	podInformer := children.Core().V1().Pods()
	deploymentInformer := children.Apps().V1().Deployments()
	tokenInformer := deps.WorkerTokenInformers.Core().V1().Secrets()
	recorder := deps.Recorder
	if recorder == nil {
		recorder = &record.FakeRecorder{} // drops events: no channel
	}
	c := &Controller{
		client: deps.SednaClient, kubeClient: deps.KubeClient, lister: informer.Lister(),
		datasetLister: datasetInformer.Lister(), pods: podInformer.Lister(), deployments: deploymentInformer.Lister(),
		synced: []cache.InformerSynced{
			informer.Informer().HasSynced, datasetInformer.Informer().HasSynced, podInformer.Informer().HasSynced,
			deploymentInformer.Informer().HasSynced, tokenInformer.Informer().HasSynced,
		},
		tokens: runtime.NewWorkerTokens(deps.KubeClient, tokenInformer.Lister()), nodeChannel: deps.NodeChannel,
		queue: runtime.NewQueue(Name), downstream: deps.Downstream, secrets: deps.Secrets,
		metrics: runtime.NewSyncMetrics(deps.Metrics, "lifelonglearning"), reportMetrics: newReportMetrics(deps.Metrics),
		recorder: recorder, lcServer: deps.LCServer, kbServer: deps.KBServer, kbSecret: deps.KBTokenSecret,
		now: time.Now, blockedRetry: 30 * time.Second, retryDelay: staged.RetryBaseDelay,
	}
	c.enqueueOwner = runtime.EnqueueController(c.queue, KindName, c.ownerUID)
	c.enqueueLabeled = runtime.EnqueueLabeled(c.queue, KindName, c.ownerUID)
	err := runtime.AddWatches(
		runtime.Watch{What: "lifelong learning jobs", Informer: informer.Informer(), Handler: runtime.EnqueueHandler(c.queue)},
		runtime.Watch{What: "datasets", Informer: datasetInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueDatasetUsers)},
		// Only the job's workers (its stage pods and the inference Deployment's pods, by their
		// labels) wake it: their state and IPs are what the job's LC is told.
		runtime.Watch{What: "pods", Informer: podInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueLabeled)},
		// A deleted worker-token Secret is created again.
		runtime.Watch{What: "worker-token secrets", Informer: tokenInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueOwner)},
		runtime.Watch{What: "deployments", Informer: deploymentInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueOwner)},
	)
	if err != nil {
		return nil, err
	}
	if c.nodeChannel != nil {
		// The report grace of a stage counts only while its LC is connected.
		c.nodeChannel.OnChange(c.enqueueNodeUsers)
	}
	return c, nil
}

// ownerUID is the UID of the named job, for runtime.EnqueueController.
func (c *Controller) ownerUID(namespace, name string) (types.UID, bool) {
	job, err := c.lister.LifelongLearningJobs(namespace).Get(name)
	if err != nil {
		return "", false
	}
	return job.UID, true
}

// enqueueNodeUsers enqueues the jobs whose Dataset is on node (their LC's channel changed).
func (c *Controller) enqueueNodeUsers(node string) {
	jobs, err := c.lister.List(labels.Everything())
	if err != nil {
		return // a lister List only fails on a bad selector
	}
	for _, job := range jobs {
		if c.datasetNode(job) == node {
			c.queue.Add(job.Namespace + "/" + job.Name)
		}
	}
}

func (c *Controller) enqueueDatasetUsers(ds metav1.Object) {
	jobs, err := c.lister.LifelongLearningJobs(ds.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, job := range jobs {
		if job.Spec.Dataset.Name == ds.GetName() {
			c.queue.Add(job.Namespace + "/" + job.Name)
		}
	}
}

// lcConnectedSince is when the LC of node connected, false while it is not connected.
func (c *Controller) lcConnectedSince(node string) (time.Time, bool) {
	if c.nodeChannel == nil {
		return time.Time{}, true
	}
	return c.nodeChannel.ConnectedSince(node)
}

// stager keeps the job's stage pods, with the controller's clock and retry delay.
func (c *Controller) stager() *staged.Stager {
	return &staged.Stager{KubeClient: c.kubeClient, Pods: c.pods, Recorder: c.recorder, Now: c.now,
		RetryDelay: c.retryDelay, LCConnectedSince: c.lcConnectedSince}
}

func (c *Controller) deploymentKeeper() *staged.Deployments {
	return &staged.Deployments{KubeClient: c.kubeClient, Lister: c.deployments, Recorder: c.recorder, Description: "lifelong learning job"}
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync, c.synced...)
}

// PrimeDownstream implements runtime.DownstreamPrimer: every job goes to its Dataset's node.
func (c *Controller) PrimeDownstream(context.Context) error {
	return runtime.PublishAll("lifelong learning jobs", c.lister.List, func(job *sednav1.LifelongLearningJob) error {
		return c.publish(job, c.datasetNode(job), c.tokens.CachedWorkerToken(ownerOf(job)))
	})
}

// datasetNode is the node of the job's Dataset, or "" while the Dataset does not exist.
func (c *Controller) datasetNode(job *sednav1.LifelongLearningJob) string {
	ds, err := c.datasetLister.Datasets(job.Namespace).Get(job.Spec.Dataset.Name)
	if err != nil {
		return ""
	}
	return ds.Spec.NodeName
}
