package jointinference

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednalisters "github.com/sedna-go/sedna/pkg/client/listers/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workerreports"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Name is the feature's name in the registry.
const Name = "JointInference"

// Kind is the channel kind of JointInferenceServices.
const Kind = "jointinferenceservice"

// Controller reconciles JointInferenceServices.
type Controller struct {
	client      sednaclientset.Interface
	kubeClient  kubernetes.Interface
	lister      sednalisters.JointInferenceServiceLister
	modelLister sednalisters.ModelLister
	deployments appslisters.DeploymentLister
	services    corelisters.ServiceLister
	hpas        autoscalinglisters.HorizontalPodAutoscalerLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	// enqueueOwner enqueues the object controlling a child (runtime.EnqueueController).
	enqueueOwner func(child metav1.Object)
	downstream   runtime.Downstream
	models       *runtime.Bindings
	metrics      *runtime.SyncMetrics
	recorder     record.EventRecorder
	lcServer     string
	// now is the clock of status times; a test seam.
	now func() metav1.Time
	// blockedRetry is how long a service waits for a missing Model or Secret before the next look.
	blockedRetry time.Duration

	pods   corelisters.PodLister
	tokens *runtime.WorkerTokens
	// enqueueLabeled enqueues the service whose labels a pod carries (runtime.EnqueueLabeled).
	enqueueLabeled func(child metav1.Object)

	// reports are the edge workers' latest counters per service.
	reports *workerreports.Store
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller. It registers the Deployment, Service and HPA informers of the kube
// factory, so that the manager starts them, and enqueues a service when one of its children or
// one of its Models changes.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	informer := deps.SednaInformers.Sedna().V1alpha1().JointInferenceServices()
	modelInformer := deps.SednaInformers.Sedna().V1alpha1().Models()
	// Only the services' children (and their pods) are cached, by their labels.
	children := deps.ChildInformerFactory(KindName)
	deploymentInformer := children.Apps().V1().Deployments()
	serviceInformer := children.Core().V1().Services()
	hpaInformer := children.Autoscaling().V2().HorizontalPodAutoscalers()
	podInformer := children.Core().V1().Pods()
	tokenInformer := deps.WorkerTokenInformers.Core().V1().Secrets()
	recorder := deps.Recorder
	if recorder == nil {
		recorder = &record.FakeRecorder{} // drops events: no channel
	}
	c := &Controller{
		client: deps.SednaClient, kubeClient: deps.KubeClient, lister: informer.Lister(),
		modelLister: modelInformer.Lister(), deployments: deploymentInformer.Lister(),
		services: serviceInformer.Lister(), hpas: hpaInformer.Lister(),
		synced: []cache.InformerSynced{
			informer.Informer().HasSynced, modelInformer.Informer().HasSynced,
			deploymentInformer.Informer().HasSynced, serviceInformer.Informer().HasSynced,
			hpaInformer.Informer().HasSynced, podInformer.Informer().HasSynced, tokenInformer.Informer().HasSynced,
		},
		pods: podInformer.Lister(), tokens: runtime.NewWorkerTokens(deps.KubeClient, tokenInformer.Lister()),
		queue: runtime.NewQueue(Name), downstream: deps.Downstream, models: deps.Models,
		metrics: runtime.NewSyncMetrics(deps.Metrics, "jointinference"), recorder: recorder,
		lcServer: deps.LCServer, now: metav1.Now, blockedRetry: 30 * time.Second,
		reports: workerreports.NewStore(),
	}
	c.enqueueOwner = runtime.EnqueueController(c.queue, KindName, c.ownerUID)
	c.enqueueLabeled = runtime.EnqueueLabeled(c.queue, KindName, c.ownerUID)
	owned := runtime.ChangeHandler(c.enqueueOwner)
	err := runtime.AddWatches(
		runtime.Watch{What: "joint inference services", Informer: informer.Informer(), Handler: runtime.EnqueueHandler(c.queue)},
		runtime.Watch{What: "models", Informer: modelInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueModelUsers)},
		// Worker pods belong to the Deployments' ReplicaSets: they are matched by their labels. Their
		// IPs are what the edge node's LC is told, and a gone pod's counters leave the metrics.
		runtime.Watch{What: "pods", Informer: podInformer.Informer(), Handler: runtime.ChangeHandler(c.enqueueLabeled)},
		runtime.Watch{What: "deployments", Informer: deploymentInformer.Informer(), Handler: owned},
		runtime.Watch{What: "services", Informer: serviceInformer.Informer(), Handler: owned},
		runtime.Watch{What: "horizontal pod autoscalers", Informer: hpaInformer.Informer(), Handler: owned},
		runtime.Watch{What: "worker-token secrets", Informer: tokenInformer.Informer(), Handler: owned},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ownerUID is the UID of the named service, for runtime.EnqueueController.
func (c *Controller) ownerUID(namespace, name string) (types.UID, bool) {
	ji, err := c.lister.JointInferenceServices(namespace).Get(name)
	if err != nil {
		return "", false
	}
	return ji.UID, true
}

// enqueueModelUsers enqueues the services using a Model, whose URL their workers carry.
func (c *Controller) enqueueModelUsers(m metav1.Object) {
	services, err := c.lister.JointInferenceServices(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return // a lister List only fails on a bad selector
	}
	for _, ji := range services {
		if ji.Spec.CloudWorker.Model.Name == m.GetName() || ji.Spec.EdgeWorker.Model.Name == m.GetName() {
			c.queue.Add(ji.Namespace + "/" + ji.Name)
		}
	}
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync, c.synced...)
}

// PrimeDownstream implements runtime.DownstreamPrimer.
func (c *Controller) PrimeDownstream(context.Context) error {
	return runtime.PublishAll("joint inference services", c.lister.List, func(ji *sednav1.JointInferenceService) error {
		return c.publish(ji, c.tokens.CachedWorkerToken(ownerOf(ji)))
	})
}

// publish sends the service to its edge node and binds the edge model there. The copy carries
// the SHA-256 of the service's worker token (token "" sends none) and its workers on that node
// with their pod IPs (contract C1), and its version is raised to the newest of those pods'
// resourceVersions so that a pod change reaches the LC; neither is written to the API server.
func (c *Controller) publish(ji *sednav1.JointInferenceService, token string) error {
	key := runtime.Key(Kind, ji.Namespace, ji.Name)
	node := ji.Spec.EdgeWorker.Template.Spec.NodeName
	c.models.Set(key, []channel.Key{runtime.Key("model", ji.Namespace, ji.Spec.EdgeWorker.Model.Name)}, []string{node})
	copied := ji.DeepCopy()
	pods, err := c.workerPods(ji)
	if err != nil {
		return err
	}
	nodeWorkers, podsVersion := runtime.NodeWorkers(pods, node, workerTypeLabel)
	copied.Annotations, err = runtime.WorkerAuth{Token: token, Workers: nodeWorkers}.Annotate(copied.Annotations)
	if err != nil {
		return fmt.Errorf("publishing joint inference service %s/%s: %w", ji.Namespace, ji.Name, err)
	}
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, "JointInferenceService")
	if err != nil {
		return err
	}
	c.downstream.Publish(key, max(version, podsVersion), data, node)
	return nil
}

// workerPods are the pods carrying the service's labels (both workers' Deployments).
func (c *Controller) workerPods(ji *sednav1.JointInferenceService) ([]*corev1.Pod, error) {
	pods, err := c.pods.Pods(ji.Namespace).List(labels.SelectorFromSet(workers.OwnerSelector(ownerOf(ji))))
	if err != nil {
		return nil, fmt.Errorf("listing the pods of joint inference service %s/%s: %w", ji.Namespace, ji.Name, err)
	}
	return pods, nil
}
