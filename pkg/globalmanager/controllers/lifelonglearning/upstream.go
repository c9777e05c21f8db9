package lifelonglearning

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/staged"
)

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// HandleReport takes an LC report. Stage reports are queued for the job's next sync, in order
// (staged.Pending); relayed worker reports only count: the LC already turned them into stage
// reports.
func (c *Controller) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	stage, worker, err := staged.ParseReport("lifelong learning", content)
	if err != nil {
		c.reportMetrics.reports.WithLabelValues("invalid").Inc()
		return err
	}
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name), "node", node)
	if worker != nil {
		c.reportMetrics.reports.WithLabelValues("worker").Inc()
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

// reportMetrics count the LC reports: sedna_gm_lifelonglearning_reports_total{type} (stage,
// worker, invalid).
type reportMetrics struct {
	reports *prometheus.CounterVec
}

func newReportMetrics(reg prometheus.Registerer) *reportMetrics {
	m := &reportMetrics{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_gm", Subsystem: "lifelonglearning", Name: "reports_total",
			Help: "LC reports about lifelong learning jobs by type (stage, worker, invalid).",
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.reports)
	}
	return m
}
