package incrementallearning

import "github.com/prometheus/client_golang/prometheus"

// reportMetrics count the LC reports: sedna_gm_incrementallearning_reports_total{type} (stage,
// worker, invalid) and the relayed worker reports by phase and status, with label values bounded
// to the known ones.
type reportMetrics struct {
	reports       *prometheus.CounterVec
	workerReports *prometheus.CounterVec
}

func newReportMetrics(reg prometheus.Registerer) *reportMetrics {
	m := &reportMetrics{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_gm", Subsystem: "incrementallearning", Name: "reports_total",
			Help: "LC reports about incremental learning jobs by type (stage, worker, invalid).",
		}, []string{"type"}),
		workerReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_gm", Subsystem: "incrementallearning", Name: "worker_reports_total",
			Help: "Worker reports relayed by LCs, by phase and status.",
		}, []string{"phase", "status"}),
	}
	if reg != nil {
		reg.MustRegister(m.reports, m.workerReports)
	}
	return m
}
