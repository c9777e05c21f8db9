package model

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
const Name = "Model"

// Kind is the channel kind of Models.
const Kind = "model"

// Controller reconciles Models.
type Controller struct {
	client     sednaclientset.Interface
	lister     sednalisters.ModelLister
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	downstream runtime.Downstream
	models     *runtime.Bindings
	secrets    *runtime.Bindings
	metrics    *runtime.SyncMetrics

	reportsMu sync.Mutex
	// reports hold the latest metrics per Model, tagged with the UID of the Model they were
	// reported for: a Model deleted and created again under the same name starts without them.
	reports map[string]metricsReport

	now func() time.Time
}

type metricsReport struct {
	uid        types.UID
	metrics    []sednav1.Metric
	receivedAt time.Time
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	informer := deps.SednaInformers.Sedna().V1alpha1().Models()
	c := &Controller{
		client: deps.SednaClient, lister: informer.Lister(), synced: informer.Informer().HasSynced,
		queue: runtime.NewQueue(Name), downstream: deps.Downstream, models: deps.Models, secrets: deps.Secrets,
		metrics: runtime.NewSyncMetrics(deps.Metrics, "model"), reports: map[string]metricsReport{}, now: time.Now,
	}
	if _, err := informer.Informer().AddEventHandler(runtime.EnqueueHandler(c.queue)); err != nil {
		return nil, fmt.Errorf("watching models: %w", err)
	}
	// A feature started or stopped using a model on some node.
	c.models.OnChange(func(target channel.Key) {
		if target.Kind == Kind {
			c.queue.Add(target.Namespace + "/" + target.Name)
		}
	})
	return c, nil
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync, c.synced)
}

// PrimeDownstream implements runtime.DownstreamPrimer. Features bind models while they prime, so
// the manager primes the Model feature last.
func (c *Controller) PrimeDownstream(context.Context) error {
	return runtime.PublishAll("models", c.lister.List, c.publish)
}

func (c *Controller) publish(m *sednav1.Model) error {
	key := runtime.Key(Kind, m.Namespace, m.Name)
	nodes := c.models.Nodes(key)
	var secrets []channel.Key
	if m.Spec.CredentialName != "" {
		secrets = append(secrets, runtime.Key(runtime.SecretKind, m.Namespace, m.Spec.CredentialName))
	}
	c.secrets.Set(key, secrets, nodes)
	copied := m.DeepCopy()
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, "Model")
	if err != nil {
		return err
	}
	c.downstream.Publish(key, version, data, nodes...)
	return nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	cached, err := c.lister.Models(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		channelKey := runtime.Key(Kind, namespace, name)
		c.secrets.Set(channelKey, nil, nil)
		c.downstream.Unpublish(channelKey)
		c.reportsMu.Lock()
		delete(c.reports, key)
		c.reportsMu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting model %s: %w", key, err)
	}
	if err := c.publish(cached); err != nil {
		return err
	}
	c.reportsMu.Lock()
	r, ok := c.reports[key]
	if ok && r.uid != cached.UID {
		// Reported for an earlier Model of the same name.
		delete(c.reports, key)
		ok = false
	}
	c.reportsMu.Unlock()
	if !ok {
		return nil
	}
	status := cached.Status.DeepCopy()
	status.ObservedGeneration = cached.Generation
	if !slices.Equal(status.Metrics, r.metrics) {
		status.Metrics = r.metrics
		t := metav1.NewTime(r.receivedAt)
		status.UpdateTime = &t
	}
	if equality.Semantic.DeepEqual(&cached.Status, status) {
		return nil
	}
	m := cached.DeepCopy()
	m.Status = *status
	if _, err := c.client.SednaV1alpha1().Models(namespace).UpdateStatus(ctx, m, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the status of model %s: %w", key, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated model metrics", "model", klog.KObj(m), "metrics", len(r.metrics))
	return nil
}

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// HandleReport takes {"metrics":[{"key":..,"value":..}]} about a model used on the node.
func (c *Controller) HandleReport(_ context.Context, _ string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var body struct {
		Metrics []sednav1.Metric `json:"metrics"`
	}
	if err := dec.Decode(&body); err != nil {
		return fmt.Errorf("decoding the model report: %w", err)
	}
	for _, m := range body.Metrics {
		if m.Key == "" {
			return fmt.Errorf("a metric has no key")
		}
	}
	m, err := c.lister.Models(key.Namespace).Get(key.Name)
	if err != nil {
		return fmt.Errorf("model %s/%s is not known to GM: %w", key.Namespace, key.Name, err)
	}
	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	c.reports[nsName] = metricsReport{uid: m.UID, metrics: body.Metrics, receivedAt: c.now()}
	c.reportsMu.Unlock()
	c.queue.Add(nsName)
	return nil
}
