package tlsmux

import (
	"crypto/tls"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/sniff"
)

// Defaults of Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultSniffTimeout     = 3 * time.Second
	DefaultMaxHandshakes    = 1024
	DefaultBacklog          = 128
)

// ALPN protocol IDs the Mux always offers.
const (
	ALPNHTTP1   = "http/1.1"
	ALPNACMETLS = "acme-tls/1" // RFC 8737
)

// Options configures a Mux. A nil *Options selects every default. The Mux
// keeps its own copy.
type Options struct {
	// Logger receives handshake failures (at debug level). Nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics. Nil registers none.
	Registerer prometheus.Registerer
	// IPCache records the client IP of every completed handshake, for the
	// sniffing listener's ambiguous fallback. Nil records nothing.
	IPCache *sniff.IPCache
	// HandshakeTimeout bounds each TLS handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// SniffTimeout bounds the wait for the first decrypted bytes; a silent
	// client then goes to HTTP. Default 3 s.
	SniffTimeout time.Duration
	// MaxHandshakes bounds handshakes in progress; the accept loop waits
	// for a free slot. Default 1024.
	MaxHandshakes int
	// Kinds lists the decrypted kinds served: any of KindHTTP, KindLegacy,
	// KindStream. Nil selects HTTP and Stream (legacy is opt-in).
	Kinds []sniff.Kind
	// Backlog is the number of connections queued per kind. Default 128.
	Backlog int
}

func (o *Options) cloneWithDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.SniffTimeout <= 0 {
		c.SniffTimeout = DefaultSniffTimeout
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	if c.Kinds == nil {
		c.Kinds = []sniff.Kind{sniff.KindHTTP, sniff.KindStream}
	}
	// TLS inside TLS is not a thing we serve.
	c.Kinds = slices.DeleteFunc(slices.Clone(c.Kinds), func(k sniff.Kind) bool { return k == sniff.KindTLS })
	return c
}

// serverConfig clones cfg and makes sure ALPN offers http/1.1 and
// acme-tls/1.
func serverConfig(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	for _, p := range []string{ALPNHTTP1, ALPNACMETLS} {
		if !slices.Contains(c.NextProtos, p) {
			c.NextProtos = append(c.NextProtos, p)
		}
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}
