package legacy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names. Legacy sessions are counted apart from the modern protocol.
const (
	metricActive     = "dualgate_legacy_sessions_active"
	metricSessions   = "dualgate_legacy_sessions_total"
	metricHandshakes = "dualgate_legacy_handshakes_total"
	metricBytes      = "dualgate_legacy_bytes_total"
	metricResent     = "dualgate_legacy_resent_bytes_total"
)

// Handshake results, the values of the result label.
const (
	resultOK         = "ok"
	resultWrongType  = "wrong_type"
	resultBadKey     = "bad_public_key"
	resultBadProof   = "bad_proof"
	resultUnknownID  = "unknown_id"
	resultReplay     = "replayed"
	resultBadCounts  = "bad_counts"
	resultStale      = "stale"
	resultLimit      = "limit"
	resultIOError    = "io_error"
	resultTimeout    = "timeout"
	resultShutdown   = "shutdown"
	handshakeNew     = "new"
	handshakeReconn  = "reconnect"
	handshakeUnknown = "unknown"
)

// metrics are the server's collectors; a nil *metrics records nothing.
type metrics struct {
	active     prometheus.Gauge
	sessions   prometheus.Counter
	handshakes *prometheus.CounterVec // type, result
	bytes      *prometheus.CounterVec // direction
	resent     prometheus.Counter
	in, out    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricActive, Help: "Legacy (snet) sessions currently open.",
		}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricSessions, Help: "Legacy (snet) sessions established.",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricHandshakes, Help: "Legacy handshakes by type (new, reconnect) and result.",
		}, []string{"type", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricBytes, Help: "Legacy application bytes by direction (in, out; out includes resends).",
		}, []string{"direction"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricResent, Help: "Legacy bytes sent again after a reconnect.",
		}),
	}
	m.in = m.bytes.WithLabelValues("in")
	m.out = m.bytes.WithLabelValues("out")
	for _, c := range []prometheus.Collector{m.active, m.sessions, m.handshakes, m.bytes, m.resent} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("legacy: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) handshake(typ, result string) {
	if m != nil {
		m.handshakes.WithLabelValues(typ, result).Inc()
	}
}

func (m *metrics) sessionOpened() {
	if m != nil {
		m.sessions.Inc()
		m.active.Inc()
	}
}

func (m *metrics) sessionClosed() {
	if m != nil {
		m.active.Dec()
	}
}

func (m *metrics) received(n int) {
	if m != nil {
		m.in.Add(float64(n))
	}
}

func (m *metrics) sent(n, resent int) {
	if m != nil {
		m.out.Add(float64(n))
		if resent > 0 {
			m.resent.Add(float64(resent))
		}
	}
}
