package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// workerReport is a worker report as the LC forwards it (managers.EncodeForwardedReport).
type workerReport struct {
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Output *struct {
		Models    json.RawMessage            `json:"models"`
		OwnerInfo map[string]json.RawMessage `json:"ownerInfo"`
	} `json:"output"`
	Worker  string `json:"worker,omitempty"`
	Dropped uint64 `json:"dropped,omitempty"`
}

// ownerReports are the latest ownerInfo values of each worker of one object.
type ownerReports struct {
	uid     types.UID
	seq     uint64
	workers map[string]reportedValues
}

type reportedValues struct {
	seq    uint64
	values map[string]string
}

// ReportKinds implements runtime.ReportReceiver: the kind's reports when it takes them, none
// otherwise (the manager then routes none here).
func (c *Controller[T]) ReportKinds() []string {
	if !c.kind.TakesReports {
		return nil
	}
	return []string{c.channelKind}
}

// HandleReport keeps a worker's ownerInfo (times dropped, strings kept, other values as JSON),
// which becomes the object's status metrics at the next sync. Reports of workers that are not
// pods of the object are ignored.
func (c *Controller[T]) HandleReport(ctx context.Context, _ string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var r workerReport
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("decoding the %s report: %w", c.kind.Description, err)
	}
	obj, err := c.lister.Get(key.Namespace, key.Name)
	if err != nil {
		return fmt.Errorf("%s %s/%s is not known to GM: %w", c.kind.Description, key.Namespace, key.Name, err)
	}
	if r.Output == nil || len(r.Output.OwnerInfo) == 0 {
		return nil
	}
	if r.Worker != "" {
		pod, err := c.pods.Pods(key.Namespace).Get(r.Worker)
		if err != nil || !labels.SelectorFromSet(workers.OwnerSelector(c.owner(obj))).Matches(labels.Set(pod.Labels)) {
			klog.FromContext(ctx).V(2).Info("Ignoring the report of a worker that is not a pod of the object",
				"kind", c.kind.KindName, "object", klog.KObj(obj), "worker", r.Worker)
			return nil
		}
	}
	values := make(map[string]string, len(r.Output.OwnerInfo))
	for name, raw := range r.Output.OwnerInfo {
		if name == "startTime" || name == "updateTime" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		values[name] = s
	}
	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	reports := c.reports[nsName]
	if reports == nil || reports.uid != obj.GetUID() {
		reports = &ownerReports{uid: obj.GetUID(), workers: map[string]reportedValues{}}
		c.reports[nsName] = reports
	}
	reports.seq++
	reports.workers[r.Worker] = reportedValues{seq: reports.seq, values: values}
	c.reportsMu.Unlock()
	runtime.EnqueueReport(c.queue, nsName)
	return nil
}

func (c *Controller[T]) forgetReports(key string) {
	c.reportsMu.Lock()
	delete(c.reports, key)
	c.reportsMu.Unlock()
}

// reportedMetrics are, per key, the value of the latest report that has it, over the workers
// whose pods still exist; sorted by key; nil when none reported.
func (c *Controller[T]) reportedMetrics(key string, uid types.UID, pods []*corev1.Pod) []sednav1.Metric {
	existing := map[string]bool{}
	for _, p := range pods {
		existing[p.Name] = true
	}
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	reports := c.reports[key]
	if reports == nil || reports.uid != uid {
		return nil
	}
	latest, latestSeq := map[string]string{}, map[string]uint64{}
	for worker, w := range reports.workers {
		if worker != "" && !existing[worker] {
			delete(reports.workers, worker)
			continue
		}
		for k, v := range w.values {
			if w.seq >= latestSeq[k] {
				latest[k], latestSeq[k] = v, w.seq
			}
		}
	}
	if len(latest) == 0 {
		return nil
	}
	names := make([]string, 0, len(latest))
	for k := range latest {
		names = append(names, k)
	}
	sort.Strings(names)
	metrics := make([]sednav1.Metric, 0, len(names))
	for _, k := range names {
		metrics = append(metrics, sednav1.Metric{Key: k, Value: latest[k]})
	}
	return metrics
}
