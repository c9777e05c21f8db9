package messagelayer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the channel. Label values are bounded: results and reasons are fixed words.
type Metrics struct {
	ConnectedNodes  prometheus.Gauge
	FramesSent      prometheus.Counter
	FramesAcked     prometheus.Counter
	FramesResent    prometheus.Counter
	Reports         *prometheus.CounterVec // result: accepted, duplicate, rejected
	ReportsRejected *prometheus.CounterVec // reason
	MalformedFrames prometheus.Counter
	AuthFailures    *prometheus.CounterVec // reason
}

// NewMetrics creates the channel metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "sedna_gm", "channel"
	m := &Metrics{
		ConnectedNodes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "connected_nodes", Help: "LCs connected now."}),
		FramesSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_sent_total", Help: "Frames sent to LCs, resends included."}),
		FramesAcked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_acked_total", Help: "Frames LCs acknowledged."}),
		FramesResent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_resent_total", Help: "Frames sent again because no acknowledgement came in time."}),
		Reports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_total", Help: "Reports received from LCs by result."}, []string{"result"}),
		ReportsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_rejected_total", Help: "Reports rejected by reason."}, []string{"reason"}),
		MalformedFrames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "malformed_frames_total", Help: "Frames from LCs that could not be decoded."}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "auth_failures_total", Help: "Refused connections by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.ConnectedNodes, m.FramesSent, m.FramesAcked, m.FramesResent, m.Reports,
			m.ReportsRejected, m.MalformedFrames, m.AuthFailures)
	}
	return m
}

// Rejection reasons.
const (
	reasonNotBound    = "not_bound"
	reasonUnknownKind = "unknown_kind"
	reasonInvalid     = "invalid"
)
