package gmclient

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
