package listener

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/sniff"
)

// Sniff outcomes (label values of dualgate_listener_sniff_outcomes_total).
const (
	OutcomeClassified        = "classified"
	OutcomeAmbiguousViaCache = "ambiguous_via_cache"
	OutcomeAmbiguousToPlain  = "ambiguous_to_plain"
	OutcomeRejected          = "rejected"
)

// Rejection reasons of the listener itself, next to the sniff.Reason values.
const (
	ReasonMaxConns           = "max-conns"
	ReasonMaxConnsPerIP      = "max-conns-per-ip"
	ReasonKindDisabled       = "kind-disabled"
	ReasonKindClosed         = "kind-closed"
	ReasonInvalidProxyHeader = "invalid-proxy-header"
	ReasonSniffTimeout       = "sniff-timeout" // some bytes, then silence
	ReasonClosedEarly        = "closed-early"  // EOF before a decision
	ReasonReadError          = "read-error"
	ReasonListenerClosed     = "listener-closed"
)

type metrics struct {
	conns      *prometheus.CounterVec
	outcomes   *prometheus.CounterVec
	rejections *prometheus.CounterVec

	// The children counted for every connection, looked up once rather
	// than per connection (WithLabelValues hashes the label values and
	// takes a lock).
	connsByKind                                    [sniff.NumKinds]prometheus.Counter
	classified, viaCache, toPlain, rejectedOutcome prometheus.Counter
}

func newMetrics(l *Listener) *metrics {
	cl := prometheus.Labels{"layer": l.opts.MetricsLayer}
	m := &metrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_listener_connections_total", ConstLabels: cl,
			Help: "Connections handed out by the sniffing listener, by kind.",
		}, []string{"kind"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_listener_sniff_outcomes_total", ConstLabels: cl,
			Help: "Sniff outcomes: classified, ambiguous_via_cache, ambiguous_to_plain, rejected.",
		}, []string{"outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_listener_rejections_total", ConstLabels: cl,
			Help: "Connections closed by the sniffing listener, by reason.",
		}, []string{"reason"}),
	}
	for _, k := range l.opts.Kinds {
		m.conns.WithLabelValues(k.String())
	}
	for _, o := range []string{OutcomeClassified, OutcomeAmbiguousViaCache, OutcomeAmbiguousToPlain, OutcomeRejected} {
		m.outcomes.WithLabelValues(o)
	}
	for _, r := range []sniff.Reason{sniff.ReasonSSLv2, sniff.ReasonH2CPreface, sniff.ReasonProxyHeader, sniff.ReasonGarbage} {
		m.rejections.WithLabelValues(string(r))
	}
	reg := l.opts.Registerer
	if reg == nil {
		return m.cacheChildren(l.opts.Kinds)
	}
	log := l.opts.Logger
	m.conns = register(reg, log, m.conns)
	m.outcomes = register(reg, log, m.outcomes)
	m.rejections = register(reg, log, m.rejections)
	m.cacheChildren(l.opts.Kinds)
	register(reg, log, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dualgate_listener_open_connections", ConstLabels: cl,
		Help: "Open connections counted against the global limit.",
	}, func() float64 { return float64(l.open.Load()) }))
	register(reg, log, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dualgate_listener_sniffing", ConstLabels: cl,
		Help: "Connections being classified.",
	}, func() float64 { return float64(l.Sniffing()) }))
	return m
}

// cacheChildren looks up the per-connection children of the (registered)
// vectors: connections are counted for the enabled kinds only (serveConn
// rejects the others first), so only theirs exist, as before.
func (m *metrics) cacheChildren(kinds []sniff.Kind) *metrics {
	for _, k := range kinds {
		if int(k) < len(m.connsByKind) {
			m.connsByKind[k] = m.conns.WithLabelValues(k.String())
		}
	}
	m.classified = m.outcomes.WithLabelValues(OutcomeClassified)
	m.viaCache = m.outcomes.WithLabelValues(OutcomeAmbiguousViaCache)
	m.toPlain = m.outcomes.WithLabelValues(OutcomeAmbiguousToPlain)
	m.rejectedOutcome = m.outcomes.WithLabelValues(OutcomeRejected)
	return m
}

// register registers c, or reuses the collector already registered under
// the same descriptor (two listeners of one layer share their counters).
// Any other registration error is logged: metrics never stop the listener.
func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Error("listener: registering metrics", "err", err)
	}
	return c
}
