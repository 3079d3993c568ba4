package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Handshake failure reasons (label values of
// dualgate_tls_handshake_failures_total).
const (
	FailureTimeout        = "timeout"
	FailureEOF            = "eof"
	FailureNotTLS         = "not-tls"
	FailureRemoteAlert    = "remote-alert"
	FailureHandshakeError = "handshake-error"
)

type metrics struct {
	handshakes *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger, inFlight func() float64) *metrics {
	m := &metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_tls_handshakes_total",
			Help: "Completed TLS handshakes by version and negotiated ALPN protocol.",
		}, []string{"version", "alpn"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dualgate_tls_handshake_failures_total",
			Help: "Failed TLS handshakes by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{FailureTimeout, FailureEOF, FailureNotTLS, FailureRemoteAlert, FailureHandshakeError} {
		m.failures.WithLabelValues(r)
	}
	if reg != nil {
		m.handshakes = register(reg, log, m.handshakes)
		m.failures = register(reg, log, m.failures)
		register(reg, log, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dualgate_tls_handshaking",
			Help: "TLS handshakes in progress.",
		}, inFlight))
	}
	return m
}

// register registers c, or reuses the collector already registered under
// the same descriptor; any other error is logged.
func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Error("tlsmux: registering metrics", "err", err)
	}
	return c
}

// failureReason maps a handshake error to a metric label.
func failureReason(err error) string {
	var rhe tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.As(err, &rhe):
		return FailureNotTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailureTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return FailureEOF
	case strings.HasPrefix(err.Error(), "remote error:"):
		return FailureRemoteAlert
	default:
		return FailureHandshakeError
	}
}
