package dataset

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednalisters "github.com/sedna-go/sedna/pkg/client/listers/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// Name is the feature's name in the registry and its queue's name.
const Name = "Dataset"

// Kind is the channel kind of Datasets.
const Kind = "dataset"

// Controller reconciles Datasets.
type Controller struct {
	client     sednaclientset.Interface
	lister     sednalisters.DatasetLister
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	downstream runtime.Downstream
	secrets    *runtime.Bindings
	recorder   record.EventRecorder
	metrics    *runtime.SyncMetrics

	reportsMu sync.Mutex
	reports   map[string]report // namespace/name → latest report

	// Test seams.
	syncHandler func(ctx context.Context, key string) error
	now         func() time.Time
}

var (
	_ runtime.FeatureController = (*Controller)(nil)
	_ runtime.ReportReceiver    = (*Controller)(nil)
	_ runtime.DownstreamPrimer  = (*Controller)(nil)
)

// New builds the controller from the shared dependencies.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	informer := deps.SednaInformers.Sedna().V1alpha1().Datasets()
	c := &Controller{
		client:     deps.SednaClient,
		lister:     informer.Lister(),
		synced:     informer.Informer().HasSynced,
		queue:      runtime.NewQueue(Name),
		downstream: deps.Downstream,
		secrets:    deps.Secrets,
		recorder:   deps.Recorder,
		metrics:    runtime.NewSyncMetrics(deps.Metrics, "dataset"),
		reports:    map[string]report{},
		now:        time.Now,
	}
	c.syncHandler = c.sync
	if _, err := informer.Informer().AddEventHandler(runtime.EnqueueHandler(c.queue)); err != nil {
		return nil, fmt.Errorf("watching datasets: %w", err)
	}
	return c, nil
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.syncHandler, c.synced)
}
