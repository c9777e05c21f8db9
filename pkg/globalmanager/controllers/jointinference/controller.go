package jointinference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

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
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
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

	reportsMu sync.Mutex
	reports   map[string][]sednav1.Metric
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
	deploymentInformer := deps.KubeInformers.Apps().V1().Deployments()
	serviceInformer := deps.KubeInformers.Core().V1().Services()
	hpaInformer := deps.KubeInformers.Autoscaling().V2().HorizontalPodAutoscalers()
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
			hpaInformer.Informer().HasSynced,
		},
		queue: runtime.NewQueue(Name), downstream: deps.Downstream, models: deps.Models,
		metrics: runtime.NewSyncMetrics(deps.Metrics, "jointinference"), recorder: recorder,
		lcServer: deps.LCServer, now: metav1.Now, blockedRetry: 30 * time.Second,
		reports: map[string][]sednav1.Metric{},
	}
	c.enqueueOwner = runtime.EnqueueController(c.queue, KindName, c.ownerUID)
	if _, err := informer.Informer().AddEventHandler(runtime.EnqueueHandler(c.queue)); err != nil {
		return nil, fmt.Errorf("watching joint inference services: %w", err)
	}
	if _, err := modelInformer.Informer().AddEventHandler(runtime.ChangeHandler(c.enqueueModelUsers)); err != nil {
		return nil, fmt.Errorf("watching models: %w", err)
	}
	for name, childInformer := range map[string]cache.SharedIndexInformer{
		"deployments": deploymentInformer.Informer(), "services": serviceInformer.Informer(),
		"horizontal pod autoscalers": hpaInformer.Informer(),
	} {
		if _, err := childInformer.AddEventHandler(runtime.ChangeHandler(c.enqueueOwner)); err != nil {
			return nil, fmt.Errorf("watching %s: %w", name, err)
		}
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
	return runtime.PublishAll("joint inference services", c.lister.List, c.publish)
}

// publish sends the service to its edge node and binds the edge model there.
func (c *Controller) publish(ji *sednav1.JointInferenceService) error {
	key := runtime.Key(Kind, ji.Namespace, ji.Name)
	node := ji.Spec.EdgeWorker.Template.Spec.NodeName
	c.models.Set(key, []channel.Key{runtime.Key("model", ji.Namespace, ji.Spec.EdgeWorker.Model.Name)}, []string{node})
	copied := ji.DeepCopy()
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, "JointInferenceService")
	if err != nil {
		return err
	}
	c.downstream.Publish(key, version, data, node)
	return nil
}

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// workerReport is upstream's forwarded report: {"phase","status","output":{"models","ownerInfo"}}.
type workerReport struct {
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Output *struct {
		Models    json.RawMessage            `json:"models"`
		OwnerInfo map[string]json.RawMessage `json:"ownerInfo"`
	} `json:"output"`
}

// HandleReport turns the edge worker's ownerInfo counters into metrics: every key except the
// times, with string values kept and other values JSON-encoded, as upstream users read them.
func (c *Controller) HandleReport(_ context.Context, _ string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var r workerReport
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("decoding the joint inference report: %w", err)
	}
	if r.Output == nil || len(r.Output.OwnerInfo) == 0 {
		return nil // nothing to show; still a valid report
	}
	names := make([]string, 0, len(r.Output.OwnerInfo))
	for name := range r.Output.OwnerInfo {
		if name != "startTime" && name != "updateTime" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	metrics := make([]sednav1.Metric, 0, len(names))
	for _, name := range names {
		raw := r.Output.OwnerInfo[name]
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		metrics = append(metrics, sednav1.Metric{Key: name, Value: s})
	}
	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	changed := !slices.Equal(c.reports[nsName], metrics)
	c.reports[nsName] = metrics
	c.reportsMu.Unlock()
	if changed {
		c.queue.Add(nsName)
	}
	return nil
}
