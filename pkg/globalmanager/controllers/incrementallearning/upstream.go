package incrementallearning

import (
	"context"
	"errors"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
)

// The LC's reports, in the shared learning-job shapes (package staged).
type (
	modelRef     = staged.ModelRef
	stageInput   = staged.StageInput
	stageReport  = staged.StageReport
	workerReport = staged.WorkerReport
)

// parseReport decodes an incrementallearningjob report: either a stage report (nil worker
// report) or a relayed worker report (nil stage report).
func parseReport(content []byte) (*stageReport, *workerReport, error) {
	return staged.ParseReport("incremental learning", content)
}

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// HandleReport takes an LC report. Stage reports are queued for the job's next sync, in order:
// each may ask for a pod (Ready) or close a round, so none may be lost by coalescing. Relayed
// worker reports only count: the LC already turned them into stage reports.
func (c *Controller) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	stage, worker, err := parseReport(content)
	if err != nil {
		c.reportMetrics.reports.WithLabelValues("invalid").Inc()
		return err
	}
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name), "node", node)
	if worker != nil {
		c.reportMetrics.reports.WithLabelValues("worker").Inc()
		c.reportMetrics.workerReports.WithLabelValues(staged.BoundedLabel(worker.Phase, "train", "eval", "deploy", "inference"),
			staged.BoundedLabel(worker.Status, "ready", "running", "completed", "failed")).Inc()
		logger.V(2).Info("Worker report", "worker", worker.Worker, "phase", worker.Phase, "status", worker.Status, "round", worker.Round)
		return nil
	}
	c.reportMetrics.reports.WithLabelValues("stage").Inc()
	nsName := key.Namespace + "/" + key.Name
	dropped := c.pending.Add(nsName, *stage)
	logger.V(2).Info("Stage report", "stage", stage.Stage, "state", stage.State, "round", stage.Round)
	c.queue.Add(nsName)
	if dropped > 0 {
		return errors.New("too many stage reports wait for the job's status to be written; the oldest were dropped")
	}
	return nil
}

// takePending returns the job's queued stage reports; donePending(n) forgets the first n once
// they are in the status.
func (c *Controller) takePending(key string) []stageReport { return c.pending.Take(key) }

func (c *Controller) donePending(key string, n int) { c.pending.Done(key, n) }

func (c *Controller) forgetPending(key string) { c.pending.Forget(key) }
