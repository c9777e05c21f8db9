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
	// CredentialCloses counts connections closed because their token expired or was refused
	// on a later review.
	CredentialCloses *prometheus.CounterVec // reason
	// MarkWrites counts writes of the persisted report marks.
	MarkWrites *prometheus.CounterVec // result: ok, error
	// TokenDecisions counts LC token checks by who decided (local: GM verified the token
	// itself; tokenreview: the API server) and result (accepted, refused, error).
	TokenDecisions *prometheus.CounterVec // path, result
	// LocalTokenVerification is 1 while GM can verify LC tokens itself (it has the
	// service-account issuer's keys), 0 while every token goes to TokenReview.
	LocalTokenVerification prometheus.Gauge
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
		CredentialCloses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "credential_closes_total", Help: "Connections closed because their token expired or was no longer accepted."}, []string{"reason"}),
		MarkWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "report_mark_writes_total", Help: "Writes of the persisted report marks by result."}, []string{"result"}),
		TokenDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "token_decisions_total", Help: "LC token checks by who decided (local, tokenreview) and result (accepted, refused, error)."},
			[]string{"path", "result"}),
		LocalTokenVerification: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "local_token_verification", Help: "1 while GM verifies LC tokens itself with the service-account issuer's keys, 0 while every token goes to TokenReview."}),
	}
	if reg != nil {
		reg.MustRegister(m.ConnectedNodes, m.FramesSent, m.FramesAcked, m.FramesResent, m.Reports,
			m.ReportsRejected, m.MalformedFrames, m.AuthFailures, m.CredentialCloses, m.MarkWrites,
			m.TokenDecisions, m.LocalTokenVerification)
	}
	return m
}

// Rejection reasons.
const (
	reasonNotBound    = "not_bound"
	reasonUnknownKind = "unknown_kind"
	reasonInvalid     = "invalid"
)
