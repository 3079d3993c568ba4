package certs

import (
	"crypto/x509"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; all carry the label "mode" where it applies.
const (
	metricExpiry  = "dualgate_certs_expiry_timestamp_seconds"
	metricObtain  = "dualgate_certs_obtain_total"
	metricRenew   = "dualgate_certs_renew_total"
	metricReload  = "dualgate_certs_reload_total"
	metricOnDemnd = "dualgate_certs_on_demand_decisions_total"
)

// metrics holds the package's collectors. With a nil Registerer they are
// still created (and updated) but never exposed, which keeps the call
// sites free of nil checks.
type metrics struct {
	expiry   *prometheus.GaugeVec   // name → NotAfter as Unix seconds
	obtain   *prometheus.CounterVec // mode, result
	renew    *prometheus.CounterVec // mode, result
	reload   *prometheus.CounterVec // result
	onDemand *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricExpiry,
			Help: "NotAfter of the certificate currently served for each name, as a Unix timestamp.",
		}, []string{"name"}),
		obtain: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricObtain,
			Help: "Certificates obtained or issued for the first time (ACME obtain, dev leaf issue, files load), by result.",
		}, []string{"mode", "result"}),
		renew: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRenew,
			Help: "Certificate renewals (ACME renewals, dev leaf re-issues), by result.",
		}, []string{"mode", "result"}),
		reload: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricReload,
			Help: "Reloads of the certificate files (SIGHUP or file change), by result; a failed reload keeps the old certificate.",
		}, []string{"result"}),
		onDemand: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricOnDemnd,
			Help: "On-demand TLS issuance decisions for unknown server names, by result (allowed, denied).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.expiry, m.obtain, m.renew, m.reload, m.onDemand} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{m.expiry, m.obtain, m.renew, m.reload, m.onDemand} {
		reg.Unregister(c)
	}
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// setExpiry records the expiry of leaf for each of its names (DNS and IP).
func (m *metrics) setExpiry(leaf *x509.Certificate) {
	if leaf == nil {
		return
	}
	v := float64(leaf.NotAfter.Unix())
	for _, n := range leaf.DNSNames {
		m.expiry.WithLabelValues(n).Set(v)
	}
	for _, ip := range leaf.IPAddresses {
		m.expiry.WithLabelValues(ip.String()).Set(v)
	}
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 && leaf.Subject.CommonName != "" {
		m.expiry.WithLabelValues(leaf.Subject.CommonName).Set(v)
	}
}

func until(t time.Time) time.Duration { return time.Until(t).Round(time.Second) }
