package resume

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus collectors of a Server or of a client's
// sessions. A nil *metrics records nothing.
type metrics struct {
	active, detached   prometheus.Gauge
	resumes            prometheus.Counter
	refused            *prometheus.CounterVec
	bytesIn, bytesOut  prometheus.Counter
	bytesReplayed      prometheus.Counter
	handshake, resumed prometheus.Histogram
	// transports by frame mode (docs/protocol.md §5.7), children cached.
	sealed, plainInTLS prometheus.Counter
}

// newMetrics registers the collectors with reg (nil: no metrics). side is
// "server" or "client" and becomes a constant label.
func newMetrics(reg prometheus.Registerer, side string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	cl := prometheus.Labels{"side": side}
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dualgate_resume_sessions_active",
			Help: "Sessions with an attached transport.", ConstLabels: cl}),
		detached: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dualgate_resume_sessions_detached",
			Help: "Sessions without a transport, waiting for a resume.", ConstLabels: cl}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{Name: "dualgate_resume_resumes_total",
			Help: "Successful resumptions.", ConstLabels: cl}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dualgate_resume_refused_total",
			Help: "Handshakes refused, by reason.", ConstLabels: cl}, []string{"reason"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "dualgate_resume_bytes_in_total",
			Help: "Application bytes received (first reception only).", ConstLabels: cl}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "dualgate_resume_bytes_out_total",
			Help: "Application bytes sent, retransmissions included.", ConstLabels: cl}),
		bytesReplayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dualgate_resume_bytes_replayed_total",
			Help: "Application bytes retransmitted after a resume.", ConstLabels: cl}),
		handshake: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dualgate_resume_handshake_seconds",
			Help: "Duration of first handshakes.", ConstLabels: cl, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		resumed: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dualgate_resume_resume_seconds",
			Help: "Duration of resume handshakes.", ConstLabels: cl, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	transports := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dualgate_resume_transports_total",
		Help:        "Transports attached to sessions, by frame mode: sealed (the session's AEAD) or plain_in_tls (TLS alone, docs/protocol.md §5.7).",
		ConstLabels: cl}, []string{"frames"})
	m.sealed, m.plainInTLS = transports.WithLabelValues("sealed"), transports.WithLabelValues("plain_in_tls")
	for _, c := range []prometheus.Collector{m.active, m.detached, m.resumes, m.refused, m.bytesIn,
		m.bytesOut, m.bytesReplayed, m.handshake, m.resumed, transports} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// transport counts a transport attached with its frame mode.
func (m *metrics) transport(plain bool) {
	switch {
	case m == nil:
	case plain:
		m.plainInTLS.Inc()
	default:
		m.sealed.Inc()
	}
}

func (m *metrics) stateChange(_ bool, old, st State) {
	switch old {
	case StateConnected:
		m.active.Dec()
	case StateDetached:
		m.detached.Dec()
	}
	switch st {
	case StateConnected:
		m.active.Inc()
	case StateDetached:
		m.detached.Inc()
	}
}

func (m *metrics) refuse(code CloseCode) {
	if m != nil {
		m.refused.WithLabelValues(code.String()).Inc()
	}
}
