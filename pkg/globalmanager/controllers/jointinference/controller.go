package jointinference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

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
	client     sednaclientset.Interface
	lister     sednalisters.JointInferenceServiceLister
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	downstream runtime.Downstream
	models     *runtime.Bindings
	metrics    *runtime.SyncMetrics

	reportsMu sync.Mutex
	reports   map[string][]sednav1.Metric
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	informer := deps.SednaInformers.Sedna().V1alpha1().JointInferenceServices()
	c := &Controller{
		client: deps.SednaClient, lister: informer.Lister(), synced: informer.Informer().HasSynced,
		queue: runtime.NewQueue(Name), downstream: deps.Downstream, models: deps.Models,
		metrics: runtime.NewSyncMetrics(deps.Metrics, "jointinference"), reports: map[string][]sednav1.Metric{},
	}
	if _, err := informer.Informer().AddEventHandler(runtime.EnqueueHandler(c.queue)); err != nil {
		return nil, fmt.Errorf("watching joint inference services: %w", err)
	}
	return c, nil
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync, c.synced)
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

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	cached, err := c.lister.JointInferenceServices(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		channelKey := runtime.Key(Kind, namespace, name)
		c.models.Set(channelKey, nil, nil)
		c.downstream.Unpublish(channelKey)
		c.reportsMu.Lock()
		delete(c.reports, key)
		c.reportsMu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting joint inference service %s: %w", key, err)
	}
	if err := c.publish(cached); err != nil {
		return err
	}
	c.reportsMu.Lock()
	metrics, ok := c.reports[key]
	c.reportsMu.Unlock()
	status := cached.Status.DeepCopy()
	status.ObservedGeneration = cached.Generation
	if status.StartTime == nil {
		now := metav1.Now()
		status.StartTime = &now
	}
	if ok {
		status.Metrics = metrics
	}
	if equality.Semantic.DeepEqual(&cached.Status, status) {
		return nil
	}
	ji := cached.DeepCopy()
	ji.Status = *status
	if _, err := c.client.SednaV1alpha1().JointInferenceServices(namespace).UpdateStatus(ctx, ji, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the status of joint inference service %s: %w", key, err)
	}
	klog.FromContext(ctx).V(4).Info("Updated joint inference status", "service", klog.KObj(ji))
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
