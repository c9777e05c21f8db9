package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// NewQueue returns the named, rate-limited queue of object keys a feature controller works from.
func NewQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
	)
}

// ReportCoalescing is how long a feature gathers the LC reports of one object before it syncs
// the object: a burst of reports (many workers of a service, or one worker reporting fast)
// becomes one sync and at most one status write, not one per report.
const ReportCoalescing = time.Second

// EnqueueReport enqueues key once ReportCoalescing has passed. Reports of the same key in the
// meantime add nothing: the queue holds one waiting entry per key.
func EnqueueReport(queue workqueue.TypedRateLimitingInterface[string], key string) {
	queue.AddAfter(key, ReportCoalescing)
}

// SyncMetrics are the per-controller sync metrics: sedna_gm_<controller>_sync_duration_seconds and
// sedna_gm_<controller>_syncs_total{result}.
type SyncMetrics struct {
	Duration prometheus.Histogram
	Syncs    *prometheus.CounterVec
}

// NewSyncMetrics creates and registers (when reg is not nil) the sync metrics of a controller.
func NewSyncMetrics(reg prometheus.Registerer, controller string) *SyncMetrics {
	m := &SyncMetrics{
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sedna_gm", Subsystem: controller, Name: "sync_duration_seconds",
			Help: "Time one sync of an object took.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_gm", Subsystem: controller, Name: "syncs_total", Help: "Syncs by result.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Duration, m.Syncs)
	}
	return m
}

// RunWorkers waits for the caches, then runs workers goroutines that take keys from queue and
// call sync until ctx ends. Failed keys are retried with the queue's rate limit.
func RunWorkers(ctx context.Context, name string, queue workqueue.TypedRateLimitingInterface[string],
	workers int, metrics *SyncMetrics, sync func(ctx context.Context, key string) error, synced ...cache.InformerSynced) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", name)
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForNamedCacheSync(name, ctx.Done(), synced...) {
		return
	}
	logger.Info("Starting workers", "count", workers)
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for processNext(ctx, queue, metrics, sync) {
			}
		}, time.Second)
	}
	<-ctx.Done()
	logger.Info("Stopping workers")
}

func processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], metrics *SyncMetrics,
	sync func(ctx context.Context, key string) error) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	start := time.Now()
	err := sync(ctx, key)
	metrics.Duration.Observe(time.Since(start).Seconds())
	if err == nil {
		metrics.Syncs.WithLabelValues("success").Inc()
		queue.Forget(key)
		return true
	}
	metrics.Syncs.WithLabelValues("error").Inc()
	klog.FromContext(ctx).Error(err, "Sync failed; will retry", "key", key, "retries", queue.NumRequeues(key))
	queue.AddRateLimited(key)
	return true
}

// Watch is an event handler a controller adds to a shared informer; What names the objects
// watched in the error ("datasets").
type Watch struct {
	What     string
	Informer cache.SharedInformer
	Handler  cache.ResourceEventHandler
}

// AddWatches adds each watch's handler to its informer, in order; the first that cannot be added
// is returned as "watching <what>: <err>".
func AddWatches(watches ...Watch) error {
	for _, w := range watches {
		if _, err := w.Informer.AddEventHandler(w.Handler); err != nil {
			return fmt.Errorf("watching %s: %w", w.What, err)
		}
	}
	return nil
}

// EnqueueHandler returns an informer event handler that adds the object's key to queue. Resyncs
// with an unchanged resourceVersion are dropped; tombstones are unwrapped.
func EnqueueHandler(queue workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandlerFuncs {
	return ChangeHandler(func(obj metav1.Object) { queue.Add(cache.MetaObjectToName(obj).String()) })
}

// ChangeHandler returns an informer event handler that calls fn with every added, changed or
// deleted object (tombstones unwrapped), dropping resyncs with an unchanged resourceVersion.
func ChangeHandler(fn func(obj metav1.Object)) cache.ResourceEventHandlerFuncs {
	call := func(obj any) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		meta, ok := obj.(metav1.Object)
		if !ok {
			utilruntime.HandleError(fmt.Errorf("informer delivered %T, not an object with metadata", obj))
			return
		}
		fn(meta)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: call,
		UpdateFunc: func(oldObj, newObj any) {
			oldMeta, ok1 := oldObj.(metav1.Object)
			newMeta, ok2 := newObj.(metav1.Object)
			if ok1 && ok2 && oldMeta.GetResourceVersion() == newMeta.GetResourceVersion() {
				return
			}
			call(newObj)
		},
		DeleteFunc: call,
	}
}

// EnqueueController returns a function that enqueues the owner of kind controlling a child
// object, after checking with ownerUID (the owner's current UID from a lister, false if absent)
// that it is the same object: a child left by a deleted owner of the same name does not wake
// its successor.
func EnqueueController(queue workqueue.TypedRateLimitingInterface[string], kind string,
	ownerUID func(namespace, name string) (types.UID, bool)) func(child metav1.Object) {
	return func(child metav1.Object) {
		ref := metav1.GetControllerOf(child)
		if ref == nil || ref.Kind != kind || ref.APIVersion != sednav1.SchemeGroupVersion.String() {
			return
		}
		if uid, ok := ownerUID(child.GetNamespace(), ref.Name); !ok || uid != ref.UID {
			return
		}
		queue.Add(child.GetNamespace() + "/" + ref.Name)
	}
}

// EnqueueLabeled returns a function that enqueues the owner of kind a child carries the labels
// of (workers.Labels: <kind>.sedna.io/name and uid), after checking with ownerUID that it is the
// same object. Worker pods of Deployments are controlled by ReplicaSets, not by the owner, so
// pods are matched by these labels.
func EnqueueLabeled(queue workqueue.TypedRateLimitingInterface[string], kind string,
	ownerUID func(namespace, name string) (types.UID, bool)) func(child metav1.Object) {
	prefix := strings.ToLower(kind) + ".sedna.io/"
	return func(child metav1.Object) {
		name, uid := child.GetLabels()[prefix+"name"], child.GetLabels()[prefix+"uid"]
		if name == "" || uid == "" {
			return
		}
		if current, ok := ownerUID(child.GetNamespace(), name); !ok || string(current) != uid {
			return
		}
		queue.Add(child.GetNamespace() + "/" + name)
	}
}
