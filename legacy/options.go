package legacy

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Implementation defaults of the options.
const (
	DefaultResendBuffer     = 1 << 20
	DefaultReceiveBuffer    = 256 << 10
	DefaultReconnectWait    = 60 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultLingerTimeout    = 5 * time.Second
	DefaultMaxSessions      = 10000
	DefaultMaxSessionsPerIP = 64
	DefaultRetryInterval    = 100 * time.Millisecond
	DefaultMaxRetryInterval = 2 * time.Second

	// chunkSize is the largest single transport read or write.
	chunkSize = 32 << 10
)

// ServerOptions configures a Server. A nil *ServerOptions means all
// defaults. The server copies the options; changing them afterwards has no
// effect.
type ServerOptions struct {
	// Encrypt turns RC4 encryption of application data on. It is not
	// negotiated: clients must be configured alike. The session ID is
	// encrypted either way.
	Encrypt bool
	// ResendBuffer is how many bytes of sent data a session keeps to resend
	// after a reconnect (default DefaultResendBuffer, 1 MiB). It also bounds
	// the data a session buffers while its client is away. Allocated lazily.
	ResendBuffer int
	// ReceiveBuffer bounds the received bytes a session holds until the
	// application reads them (default DefaultReceiveBuffer, 256 KiB).
	ReceiveBuffer int
	// ReconnectWait is how long a session whose transport failed waits for
	// its client to reconnect before it ends (default 60s).
	ReconnectWait time.Duration
	// HandshakeTimeout bounds every handshake, new or reconnect, from the
	// first byte; a silent client is cut off after it (default 10s).
	HandshakeTimeout time.Duration
	// LingerTimeout bounds how long Close waits to flush buffered data to a
	// connected client (default 5s).
	LingerTimeout time.Duration
	// MaxSessions bounds the live sessions (default 10000).
	MaxSessions int
	// MaxSessionsPerIP bounds the live sessions per client IP (default 64).
	MaxSessionsPerIP int
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the dualgate_legacy_* metrics; nil means none.
	Registerer prometheus.Registerer
}

func (o *ServerOptions) cloneWithDefaults() ServerOptions {
	var c ServerOptions
	if o != nil {
		c = *o
	}
	c.ResendBuffer = positive(c.ResendBuffer, DefaultResendBuffer)
	c.ReceiveBuffer = positive(c.ReceiveBuffer, DefaultReceiveBuffer)
	c.ReconnectWait = positive(c.ReconnectWait, DefaultReconnectWait)
	c.HandshakeTimeout = positive(c.HandshakeTimeout, DefaultHandshakeTimeout)
	c.LingerTimeout = positive(c.LingerTimeout, DefaultLingerTimeout)
	c.MaxSessions = positive(c.MaxSessions, DefaultMaxSessions)
	c.MaxSessionsPerIP = positive(c.MaxSessionsPerIP, DefaultMaxSessionsPerIP)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// DialFunc opens one transport to the server: TCP, TLS, or a WebSocket
// wrapped with WebSocketConn. The returned conn must outlive ctx, which
// only bounds the dial.
type DialFunc func(ctx context.Context) (net.Conn, error)

// DialOptions configures a client Conn. A nil *DialOptions means all
// defaults. The client copies the options.
type DialOptions struct {
	// Encrypt must match the server's ServerOptions.Encrypt.
	Encrypt bool
	// ResendBuffer is the client's resend buffer (default 1 MiB).
	ResendBuffer int
	// ReceiveBuffer bounds received, unread bytes (default 256 KiB).
	ReceiveBuffer int
	// HandshakeTimeout bounds each dial plus handshake (default 10s).
	HandshakeTimeout time.Duration
	// ReconnectWait is how long the client keeps trying to reconnect after
	// its transport fails before the session ends (default 60s).
	ReconnectWait time.Duration
	// RetryInterval is the first pause between reconnect attempts; it
	// doubles up to MaxRetryInterval (defaults 100ms and 2s).
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// ReadIdleTimeout, when positive, abandons a transport that delivered
	// nothing for that long and reconnects. The format has no keepalive,
	// so this only suits applications that talk regularly; it is how a
	// client notices a half-open socket. Zero disables it.
	ReadIdleTimeout time.Duration
	// LingerTimeout bounds how long Close flushes buffered data (default 5s).
	LingerTimeout time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

func (o *DialOptions) cloneWithDefaults() DialOptions {
	var c DialOptions
	if o != nil {
		c = *o
	}
	c.ResendBuffer = positive(c.ResendBuffer, DefaultResendBuffer)
	c.ReceiveBuffer = positive(c.ReceiveBuffer, DefaultReceiveBuffer)
	c.HandshakeTimeout = positive(c.HandshakeTimeout, DefaultHandshakeTimeout)
	c.ReconnectWait = positive(c.ReconnectWait, DefaultReconnectWait)
	c.RetryInterval = positive(c.RetryInterval, DefaultRetryInterval)
	c.MaxRetryInterval = positive(c.MaxRetryInterval, DefaultMaxRetryInterval)
	c.LingerTimeout = positive(c.LingerTimeout, DefaultLingerTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func positive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
