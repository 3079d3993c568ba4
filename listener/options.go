package listener

import (
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/sniff"
)

// Defaults of Options.
const (
	DefaultSniffTimeout  = 3 * time.Second
	DefaultMaxSniffing   = 4096
	DefaultMaxConns      = 16384
	DefaultMaxConnsPerIP = 1024
	DefaultBacklog       = 128
	DefaultMetricsLayer  = "tcp"
)

// Options configures a Listener. A nil *Options selects every default. The
// Listener keeps its own copy; changing Options after New has no effect.
type Options struct {
	// Logger receives rejections and accept errors. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the listener's metrics. Nil registers none.
	Registerer prometheus.Registerer
	// MetricsLayer is the value of the const label "layer" on every metric,
	// so that a second Listener (tlsmux re-sniffs decrypted bytes with one)
	// can share the Registerer. Default "tcp".
	MetricsLayer string

	// Kinds lists the kinds that are served. Connections of any other kind
	// are closed with reason "kind-disabled". Nil selects TLS, HTTP and
	// Stream: the legacy protocol is opt-in.
	Kinds []sniff.Kind

	// SniffTimeout bounds reading the PROXY header and the first bytes.
	// A client silent for this long is ambiguous. Default 3 s.
	SniffTimeout time.Duration
	// MaxSniffing bounds connections being classified at once; the accept
	// loop waits for a free slot. Default 4096.
	MaxSniffing int
	// MaxConns bounds open connections (a connection counts until closed);
	// new ones beyond it are closed at once. Default 16384, negative means
	// no limit.
	MaxConns int
	// MaxConnsPerIP bounds open connections per client IP (after PROXY).
	// Default 1024, negative means no limit.
	MaxConnsPerIP int
	// TrustedProxies lists the peers whose PROXY headers are honoured.
	TrustedProxies []netip.Prefix
	// IPCache holds the client IPs that recently completed TLS; a silent
	// connection from one of them is handed to TLS, any other to HTTP.
	// Nil: every silent connection goes to HTTP.
	IPCache *sniff.IPCache
	// Backlog is the number of classified connections queued per kind
	// before classification waits for Accept. Default 128.
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
	if c.MetricsLayer == "" {
		c.MetricsLayer = DefaultMetricsLayer
	}
	if c.Kinds == nil {
		c.Kinds = []sniff.Kind{sniff.KindTLS, sniff.KindHTTP, sniff.KindStream}
	} else {
		c.Kinds = slices.Clone(c.Kinds)
	}
	if c.SniffTimeout <= 0 {
		c.SniffTimeout = DefaultSniffTimeout
	}
	if c.MaxSniffing <= 0 {
		c.MaxSniffing = DefaultMaxSniffing
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	c.TrustedProxies = slices.Clone(c.TrustedProxies)
	for i, p := range c.TrustedProxies {
		c.TrustedProxies[i] = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p)).Masked()
	}
	return c
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 prefix loses when
// it is written as IPv4.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return 96
	}
	return 0
}
