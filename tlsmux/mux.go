package tlsmux

import (
	"crypto/tls"
	"net"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

// Mux terminates TLS on the connections of a listener and hands out the
// decrypted connections by the kind of their first bytes. Create it with
// New; the zero value is not usable. It is safe for concurrent use.
type Mux struct {
	hs *handshaker
	l  *listener.Listener
}

// New returns a Mux that accepts from tlsKind (normally
// listener.Listener.For(sniff.KindTLS)), which it owns from now on, and
// terminates TLS with a clone of cfg whose ALPN list is extended with
// http/1.1 and acme-tls/1 when missing. cfg must not be nil. Its
// GetCertificate, GetConfigForClient and friends are used as they are.
func New(tlsKind net.Listener, cfg *tls.Config, opts *Options) *Mux {
	o := opts.cloneWithDefaults()
	hs := newHandshaker(tlsKind, serverConfig(cfg), &o)
	l := listener.New(hs, &listener.Options{
		Logger:        o.Logger,
		Registerer:    o.Registerer,
		MetricsLayer:  "tls",
		Kinds:         o.Kinds,
		SniffTimeout:  o.SniffTimeout,
		MaxSniffing:   o.MaxHandshakes,
		MaxConns:      -1, // the outer listener already counts these connections
		MaxConnsPerIP: -1,
		Backlog:       o.Backlog,
	})
	return &Mux{hs: hs, l: l}
}

// For returns the listener of decrypted connections of kind k (KindHTTP,
// KindLegacy or KindStream). Its Accept returns *listener.Conn values whose
// NetConn is the *tls.Conn; ConnectionState finds the TLS state of any of
// them. For a kind not served it returns a listener whose Accept fails.
func (m *Mux) For(k sniff.Kind) net.Listener { return m.l.For(k) }

// Addr returns the address of the underlying listener.
func (m *Mux) Addr() net.Addr { return m.hs.Addr() }

// Close closes the TLS-kind listener, every handshake in progress and every
// connection still being re-sniffed, unblocks every Accept and waits for the
// Mux's goroutines. Connections already handed out stay open. Close is
// idempotent.
func (m *Mux) Close() error { return m.l.Close() }
