package jointinference

import (
	"context"
	"fmt"
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workerreports"
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

// HandleReport records the edge worker's ownerInfo (workerreports: only from a pod of the service
// on node, within bounds) and node's count of refused reports.
func (c *Controller) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	r, err := workerreports.Decode(content, "joint inference")
	if err != nil {
		return err
	}
	ji, err := c.lister.JointInferenceServices(key.Namespace).Get(key.Name)
	if err != nil {
		return fmt.Errorf("joint inference service %s/%s is not known to GM: %w", key.Namespace, key.Name, err)
	}
	nsName := key.Namespace + "/" + key.Name
	if c.reports.RecordDropped(nsName, ji.UID, node, r.Dropped) {
		c.queue.Add(nsName)
	}
	if c.reports.Record(ctx, c.pods, c.recorder, workerreports.Object{
		Key: nsName, UID: ji.UID, Event: ji, Selector: workers.OwnerSelector(ownerOf(ji)),
	}, node, r) {
		// The counters are shown in the status: a burst of reports is one status write.
		runtime.EnqueueReport(c.queue, nsName)
	}
	return nil
}

// droppedReports returns the nodes whose LC refused reports about the service, with their counts.
func (c *Controller) droppedReports(ji *sednav1.JointInferenceService) map[string]uint64 {
	return c.reports.Dropped(ji.Namespace+"/"+ji.Name, ji.UID)
}

// reportedMetrics returns the service's metrics from its workers' latest reports, after dropping
// the workers whose pods are gone; false when no worker reported. With several edge replicas
// each reports its own cumulative counters: they are summed over the workers.
func (c *Controller) reportedMetrics(ji *sednav1.JointInferenceService, pods []*corev1.Pod) ([]sednav1.Metric, bool) {
	reported := c.reports.Workers(ji.Namespace+"/"+ji.Name, ji.UID, pods)
	if len(reported) == 0 {
		return nil, false
	}
	return aggregate(reported), true
}

// aggregate sums the counters over the workers, computes the ratio of the sums and takes any
// other key from the latest report that has it; sorted by key.
func aggregate(reported map[string]workerreports.Worker) []sednav1.Metric {
	latest := workerreports.Latest(reported, func(k string) bool {
		return k == inferenceNumberKey || k == hardExampleNumberKey || k == uploadCloudRatioKey
	})
	var inferences, hardExamples float64
	counted := false
	for _, w := range reported {
		n, okN := number(w.Values[inferenceNumberKey])
		h, okH := number(w.Values[hardExampleNumberKey])
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
	return workerreports.Metrics(latest)
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
