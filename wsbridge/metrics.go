package wsbridge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// bridgeMetrics are the Bridger's metrics. They always exist; they are only
// registered when a Registerer is given.
type bridgeMetrics struct {
	bytes      *prometheus.CounterVec // route, direction (in: client to upstream, out: upstream to client)
	dialErrors *prometheus.CounterVec // route, reason
	active     *prometheus.GaugeVec   // route
	ends       *prometheus.CounterVec // route, reason
}

func newBridgeMetrics(reg prometheus.Registerer) (*bridgeMetrics, error) {
	m := &bridgeMetrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_wsbridge_bytes_total",
			Help: "Application bytes bridged, by route and direction (in: client to upstream, out: upstream to client).",
		}, []string{"route", "direction"}),
		dialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_wsbridge_upstream_dial_errors_total",
			Help: "Failed upstream dials, by route and reason.",
		}, []string{"route", "reason"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dualgate_wsbridge_bridges_active",
			Help: "Sessions currently bridged to an upstream, by route.",
		}, []string{"route"}),
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_wsbridge_bridges_ended_total",
			Help: "Bridges that ended, by route and how (client_close, upstream_close, upstream_error, session_end, drain, shutdown, dial_error, no_route).",
		}, []string{"route", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bytes, m.dialErrors, m.active, m.ends} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("wsbridge: registering metrics (one Bridger per registry): %w", err)
		}
	}
	return m, nil
}
