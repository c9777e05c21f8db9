package gmclient

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Dial results. Bounded so they can be label values.
const (
	dialOK           = "ok"
	dialTokenError   = "token_error"
	dialTLSError     = "tls_error"
	dialRefused      = "refused" // GM answered the upgrade with an HTTP error (authentication, node)
	dialNetworkError = "network_error"
	dialConfigError  = "config_error" // the CA bundle could not be read
)

// Downstream frame results.
const (
	frameChanged   = "changed"
	frameUnchanged = "unchanged"
	frameRejected  = "rejected"
)

// metrics of the LC's end of the channel. Label values are fixed words, never object names.
type metrics struct {
	connected       prometheus.Gauge
	dials           *prometheus.CounterVec // result
	framesApplied   *prometheus.CounterVec // result
	reportsSent     prometheus.Counter
	reportsAccepted prometheus.Counter
	reportsRejected prometheus.Counter
	reportsDropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "sedna_lc", "channel"
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "connected", Help: "1 while the LC is connected to GM."}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dials_total", Help: "Connection attempts to GM by result."}, []string{"result"}),
		framesApplied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_applied_total", Help: "Frames from GM by result: changed the store, changed nothing (replay or stale), rejected (not acknowledged)."}, []string{"result"}),
		reportsSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_sent_total", Help: "Reports sent to GM, resends after reconnects included."}),
		reportsAccepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_accepted_total", Help: "Reports GM acknowledged without error."}),
		reportsRejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_rejected_total", Help: "Reports GM rejected; they are dropped from the outbox."}),
		reportsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_undeliverable_total", Help: "Outbox entries dropped without sending because they are damaged or too large."}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.connected, m.dials, m.framesApplied, m.reportsSent,
		m.reportsAccepted, m.reportsRejected, m.reportsDropped} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering GM client metrics: %w", err)
	}
	return m, nil
}

// outboxCollector reports the outbox's use of its byte budget, read from the store at each
// scrape. The class label takes the values of store.Class (own, worker_event, worker_metrics).
type outboxCollector struct {
	store     *store.Store
	budget    *prometheus.Desc
	bytes     *prometheus.Desc
	limit     *prometheus.Desc
	reports   *prometheus.Desc
	rejected  *prometheus.Desc
	coalesced *prometheus.Desc
}

func newOutboxCollector(st *store.Store) *outboxCollector {
	name := func(n string) string { return prometheus.BuildFQName("sedna_lc", "outbox", n) }
	class := []string{"class"}
	return &outboxCollector{
		store: st,
		budget: prometheus.NewDesc(name("budget_bytes"),
			"Byte budget of the LC's outbox of reports to GM (--outbox-max-bytes).", nil, nil),
		bytes: prometheus.NewDesc(name("bytes"),
			"Accounted bytes of the reports waiting in the outbox, by class.", class, nil),
		limit: prometheus.NewDesc(name("limit_bytes"),
			"Bytes a class of reports may take of the outbox on its own (the worker classes also share half the budget).", class, nil),
		reports: prometheus.NewDesc(name("reports"),
			"Reports waiting in the outbox, by class.", class, nil),
		rejected: prometheus.NewDesc(name("rejected_total"),
			"Reports refused because the outbox or their class's share of it was full, by class.", class, nil),
		coalesced: prometheus.NewDesc(name("coalesced_total"),
			"Queued worker-metrics reports replaced by a newer report of the same worker.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.budget, c.bytes, c.limit, c.reports, c.rejected, c.coalesced} {
		ch <- d
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.store.OutboxStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.bytes, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(stats.BudgetBytes))
	ch <- prometheus.MustNewConstMetric(c.coalesced, prometheus.CounterValue, float64(stats.Coalesced))
	for _, cs := range stats.Classes {
		class := cs.Class.String()
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(cs.Bytes), class)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(cs.LimitBytes), class)
		ch <- prometheus.MustNewConstMetric(c.reports, prometheus.GaugeValue, float64(cs.Reports), class)
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(cs.Rejected), class)
	}
}
