package jointinference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// The counters upstream's edge worker reports, cumulative since the worker started; GM shows
// their sums over the service's edge workers and the ratio of the sums.
const (
	inferenceNumberKey   = "inferenceNumber"
	hardExampleNumberKey = "hardExampleNumber"
	uploadCloudRatioKey  = "uploadCloudRatio"
)

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// workerReport is upstream's forwarded report: {"phase","status","output":{"models","ownerInfo"}},
// plus "worker", the reporting worker's name, when the LC adds it.
type workerReport struct {
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Output *struct {
		Models    json.RawMessage            `json:"models"`
		OwnerInfo map[string]json.RawMessage `json:"ownerInfo"`
	} `json:"output"`
	Worker string `json:"worker,omitempty"`
	// Dropped is how many reports about the service the node's LC refused since it started
	// because its outbox was full (absent when none): see managers.EncodeForwardedReport.
	Dropped uint64 `json:"dropped,omitempty"`
}

// serviceReports are the latest counters of each edge worker of one service. With several edge
// replicas each reports its own cumulative counters; keeping one entry per worker and summing
// them is what the service did, where keeping only the last report made the counters flip
// between replicas. Entries are dropped when their pod is gone, so the map is bounded by the
// service's pods. A report without a worker name (an LC that does not send it) is kept in the
// "" entry, dropped as soon as a named report comes.
type serviceReports struct {
	// uid is the service the reports are about: a service created again under the same name
	// starts without them.
	uid     types.UID
	workers map[string]workerCounters
	// seq orders the reports, so that keys other than the counters show the latest report's.
	seq uint64
	// dropped is, per node, the newest count of reports its LC refused for a full outbox; a
	// node whose reports come without a count again is removed.
	dropped map[string]uint64
}

type workerCounters struct {
	seq    uint64
	values map[string]string
}

// HandleReport records the edge worker's ownerInfo: every key except the times, with string
// values kept and other values JSON-encoded, as upstream users read them. A report naming a
// worker that is not one of the service's pods is ignored: its counters could never be pruned.
func (c *Controller) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var r workerReport
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("decoding the joint inference report: %w", err)
	}
	ji, err := c.lister.JointInferenceServices(key.Namespace).Get(key.Name)
	if err != nil {
		return fmt.Errorf("joint inference service %s/%s is not known to GM: %w", key.Namespace, key.Name, err)
	}
	nsName := key.Namespace + "/" + key.Name
	if c.recordDropped(nsName, ji.UID, node, r.Dropped) {
		c.queue.Add(nsName)
	}
	if r.Output == nil || len(r.Output.OwnerInfo) == 0 {
		return nil // nothing to show; still a valid report
	}
	if r.Worker != "" {
		pod, err := c.pods.Pods(key.Namespace).Get(r.Worker)
		if err != nil || !labels.SelectorFromSet(workers.OwnerSelector(ownerOf(ji))).Matches(labels.Set(pod.Labels)) {
			klog.FromContext(ctx).V(2).Info("Ignoring the report of a worker that is not a pod of the service",
				"service", klog.KObj(ji), "worker", r.Worker)
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
	c.reportsMu.Lock()
	reports := c.reportsOf(nsName, ji.UID)
	if r.Worker != "" {
		delete(reports.workers, "")
	}
	reports.seq++
	reports.workers[r.Worker] = workerCounters{seq: reports.seq, values: values}
	c.reportsMu.Unlock()
	// The counters are shown in the status: a burst of reports is one status write.
	runtime.EnqueueReport(c.queue, nsName)
	return nil
}

// reportsOf returns the service's reports, starting over for a service created again under the
// same name. The caller holds reportsMu.
func (c *Controller) reportsOf(nsName string, uid types.UID) *serviceReports {
	reports := c.reports[nsName]
	if reports == nil || reports.uid != uid {
		reports = &serviceReports{uid: uid, workers: map[string]workerCounters{}, dropped: map[string]uint64{}}
		c.reports[nsName] = reports
	}
	return reports
}

// recordDropped keeps node's newest count of refused reports; true when it changed.
func (c *Controller) recordDropped(nsName string, uid types.UID, node string, dropped uint64) bool {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	reports := c.reportsOf(nsName, uid)
	if reports.dropped[node] == dropped {
		return false
	}
	if dropped == 0 {
		delete(reports.dropped, node)
	} else {
		reports.dropped[node] = dropped
	}
	return true
}

// droppedReports returns the nodes whose LC refused reports about the service, with their counts.
func (c *Controller) droppedReports(ji *sednav1.JointInferenceService) map[string]uint64 {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	reports := c.reports[ji.Namespace+"/"+ji.Name]
	if reports == nil || reports.uid != ji.UID || len(reports.dropped) == 0 {
		return nil
	}
	return maps.Clone(reports.dropped)
}

// reportedMetrics returns the service's metrics from its workers' latest reports, after dropping
// the workers whose pods are gone; false when no worker reported.
func (c *Controller) reportedMetrics(ji *sednav1.JointInferenceService, pods []*corev1.Pod) ([]sednav1.Metric, bool) {
	key := ji.Namespace + "/" + ji.Name
	existing := make(map[string]bool, len(pods))
	for _, pod := range pods {
		existing[pod.Name] = true
	}
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	reports := c.reports[key]
	if reports == nil {
		return nil, false
	}
	if reports.uid != ji.UID {
		delete(c.reports, key)
		return nil, false
	}
	for name := range reports.workers {
		if name != "" && !existing[name] {
			delete(reports.workers, name)
		}
	}
	if len(reports.workers) == 0 {
		return nil, false
	}
	return aggregate(reports.workers), true
}

// aggregate sums the counters over the workers, computes the ratio of the sums and takes any
// other key from the latest report that has it; sorted by key.
func aggregate(workers map[string]workerCounters) []sednav1.Metric {
	latest := map[string]string{}
	latestSeq := map[string]uint64{}
	var inferences, hardExamples float64
	counted := false
	for _, w := range workers {
		for k, v := range w.values {
			switch k {
			case inferenceNumberKey, hardExampleNumberKey, uploadCloudRatioKey:
				continue
			}
			if w.seq >= latestSeq[k] {
				latest[k], latestSeq[k] = v, w.seq
			}
		}
		n, okN := number(w.values[inferenceNumberKey])
		h, okH := number(w.values[hardExampleNumberKey])
		if okN || okH {
			counted = true
			inferences += n
			hardExamples += h
		}
	}
	if counted {
		latest[inferenceNumberKey] = formatNumber(inferences)
		latest[hardExampleNumberKey] = formatNumber(hardExamples)
		ratio := 0.0
		if inferences > 0 {
			ratio = hardExamples / inferences
		}
		latest[uploadCloudRatioKey] = strconv.FormatFloat(ratio, 'f', -1, 64)
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

func number(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}

func formatNumber(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
