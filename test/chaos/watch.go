package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/test/localsedna"
)

// watcher follows the namespace's Deployments and pods for the whole campaign and keeps, per
// worker of a Sedna object (its owner and worker-type labels), the largest number alive at
// once: a duplicate that existed for a moment counts, not only one left at the end. Its
// informers relist after an apiserver or etcd restart.
type watcher struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// deployments and pods: worker → object name → alive.
	deployments, pods  map[string]map[string]bool
	maxDeploy, maxPods int
	// worstDeploy and worstPods name a worker that had the most.
	worstDeploy, worstPods string
	events                 int
}

// workerOf names the worker of a Sedna object a child belongs to: "<kind>/<name>/<worker
// type>" from the labels GM puts on every child (workers.Labels), followed by "-<index>" for a
// federated learning job's training worker (one per spec.trainingWorkers entry, told apart by
// the controller's training-index label); "" for anything else.
func workerOf(labels map[string]string) string {
	for key, workerType := range labels {
		prefix, ok := strings.CutSuffix(key, ".sedna.io/worker-type")
		if ok {
			worker := prefix + "/" + labels[prefix+".sedna.io/name"] + "/" + workerType
			if index, ok := labels[prefix+".sedna.io/training-index"]; ok {
				worker += "-" + index
			}
			return worker
		}
	}
	return ""
}

// podWorkerOf is workerOf for a pod, followed by "@<pod-template-hash>" for a Deployment's pod:
// a rollout (the lifelong learning inference worker's, onto a newly deployed round) runs the new
// revision's pod beside the old one's for a moment, as a Deployment does; two pods of one
// revision are duplicates.
func podWorkerOf(labels map[string]string) string {
	worker := workerOf(labels)
	if hash := labels["pod-template-hash"]; worker != "" && hash != "" {
		worker += "@" + hash
	}
	return worker
}

// mark records whether obj of worker is alive and updates the worker's maximum.
func mark(sets map[string]map[string]bool, worker, name string, alive bool, most *int, worst *string) {
	if worker == "" {
		return
	}
	if sets[worker] == nil {
		sets[worker] = map[string]bool{}
	}
	sets[worker][name] = alive
	if n := count(sets[worker]); n > *most {
		*most, *worst = n, worker
	}
}

func startWatch(ctx context.Context, s *localsedna.Sedna, namespace string) (*watcher, error) {
	w := &watcher{deployments: map[string]map[string]bool{}, pods: map[string]map[string]bool{}}
	wctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	factory := informers.NewSharedInformerFactoryWithOptions(s.Kube, 0, informers.WithNamespace(namespace))
	deploy := factory.Apps().V1().Deployments().Informer()
	pods := factory.Core().V1().Pods().Informer()
	track := func(set func(obj any, deleted bool)) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { set(obj, false) },
			UpdateFunc: func(_, obj any) { set(obj, false) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				set(obj, true)
			},
		}
	}
	if _, err := deploy.AddEventHandler(track(func(obj any, deleted bool) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.events++
		mark(w.deployments, workerOf(d.Labels), d.Name, !deleted && d.DeletionTimestamp == nil, &w.maxDeploy, &w.worstDeploy)
	})); err != nil {
		cancel()
		return nil, err
	}
	if _, err := pods.AddEventHandler(track(func(obj any, deleted bool) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.events++
		mark(w.pods, podWorkerOf(p.Labels), p.Name, !deleted && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning, &w.maxPods, &w.worstPods)
	})); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(wctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), deploy.HasSynced, pods.HasSynced) {
		cancel()
		factory.Shutdown()
		return nil, fmt.Errorf("the watch of namespace %s did not sync", namespace)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		<-wctx.Done()
		factory.Shutdown()
	}()
	return w, nil
}

func count(live map[string]bool) int {
	n := 0
	for _, alive := range live {
		if alive {
			n++
		}
	}
	return n
}

// watchStats is what the watcher saw.
type watchStats struct {
	maxDeploy, maxPods     int
	worstDeploy, worstPods string
	// workers is the number of workers that had a Deployment.
	workers, events int
	// podWorkers names the workers whose pods were seen.
	podWorkers []string
}

func (w *watcher) stats() watchStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	podWorkers := make([]string, 0, len(w.pods))
	for worker := range w.pods {
		worker, _, _ = strings.Cut(worker, "@") // one name for a worker's revisions
		if !slices.Contains(podWorkers, worker) {
			podWorkers = append(podWorkers, worker)
		}
	}
	sort.Strings(podWorkers)
	return watchStats{maxDeploy: w.maxDeploy, maxPods: w.maxPods, worstDeploy: w.worstDeploy, worstPods: w.worstPods,
		workers: len(w.deployments), events: w.events, podWorkers: podWorkers}
}

func (w *watcher) stop() {
	w.cancel()
	w.wg.Wait()
}

// openTruncatedCopy writes data as a store file in a temporary directory and opens it with the
// LC's store code; the store must open and take a write.
func openTruncatedCopy(data []byte) (bool, string) {
	dir, err := os.MkdirTemp("", "chaos-store-")
	if err != nil {
		return false, err.Error()
	}
	defer func() { _ = os.RemoveAll(dir) }() // scratch
	path := filepath.Join(dir, "lc.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return false, err.Error()
	}
	var s *store.Store
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		s, err = store.Open(path, store.Options{})
	}()
	if err != nil {
		return false, err.Error()
	}
	defer func() { _ = s.Close() }() // scratch
	if err := s.PutState("chaos", "probe", []byte("x")); err != nil {
		return false, err.Error()
	}
	return true, ""
}
