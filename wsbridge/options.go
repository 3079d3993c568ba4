package wsbridge

import (
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the Options fields.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultBufferSize     = 128 << 10
	DefaultMaxMessageSize = 1 << 20
	DefaultEchoQueue      = 4
)

// Options configure a Bridger. A nil *Options means all defaults. Options are
// copied by New; changing them afterwards has no effect.
type Options struct {
	// DialTimeout bounds opening an upstream connection, including the
	// WebSocket or TLS handshake and the PROXY header. Default 10s.
	DialTimeout time.Duration
	// CloseTimeout bounds how long, after a client closed cleanly and the
	// upstream was told so (TCP CloseWrite, WebSocket close frame), the bridge
	// keeps forwarding what the upstream still sends before closing it.
	// Default 5s.
	CloseTimeout time.Duration
	// BufferSize is the size of the pooled buffer each copy direction uses
	// for byte streams, taken only while there are bytes to copy. Default
	// 128 KiB: fewer, larger writes (about 10 % less gateway CPU per GB than
	// 32 KiB in dualbench throughput).
	BufferSize int
	// MaxMessageSize is the largest message accepted from a WebSocket
	// upstream; a larger one ends the bridge (4011). Default 1 MiB.
	MaxMessageSize int64
	// EchoQueue is the number of messages the built-in echo upstream holds
	// before it stops reading (backpressure). Default 4.
	EchoQueue int
	// DefaultRoute is the route path used for sessions that do not carry
	// their route (sessions that do not implement InfoSession, such as
	// legacy sessions). Empty means such sessions have no route.
	DefaultRoute string
	// SessionInfo, if set, supplies the Info of sessions that do not
	// implement InfoSession (ok false: use RemoteAddr and DefaultRoute). The
	// gateway sets it to legacy.SessionInfo, converted, so that legacy
	// sessions carry their route and client without wsbridge importing
	// the legacy package.
	SessionInfo func(c net.Conn) (Info, bool)
	// UpstreamTLSConfig is used for wss:// upstreams. Nil means the system
	// roots and the URL's host name.
	UpstreamTLSConfig *tls.Config
	// Logger receives bridge events. Nil means no logging.
	Logger *slog.Logger
	// Registerer receives the bridge metrics. Nil means no metrics.
	Registerer prometheus.Registerer
}

func (o *Options) cloneWithDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.EchoQueue <= 0 {
		c.EchoQueue = DefaultEchoQueue
	}
	if c.UpstreamTLSConfig != nil {
		c.UpstreamTLSConfig = c.UpstreamTLSConfig.Clone()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
