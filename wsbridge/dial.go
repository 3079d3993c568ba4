package wsbridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/coder/websocket"
	proxyproto "github.com/pires/go-proxyproto"
)

// DialError is the error of a failed upstream dial. Reason is a short,
// stable word for metrics and for the client's close reason (refused,
// timeout, dns, not_found, handshake, tls, proxy_header, other); the client
// never sees the upstream's address.
type DialError struct {
	Route    string
	Upstream Upstream
	Reason   string
	Err      error
}

// Error implements error.
func (e *DialError) Error() string {
	if e.Upstream.Kind == 0 {
		return fmt.Sprintf("wsbridge: route %q: %s: %v", e.Route, e.Reason, e.Err)
	}
	return fmt.Sprintf("wsbridge: route %s: dialling upstream %s (%s): %v", e.Route, e.Upstream, e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// clientReason is the close reason sent to the client.
func (e *DialError) clientReason() string {
	switch e.Reason {
	case "refused":
		return "upstream unreachable: connection refused"
	case "timeout":
		return "upstream unreachable: timed out"
	case "not_found":
		return "upstream unreachable: no such socket"
	case "dns":
		return "upstream unreachable: name not resolved"
	case "handshake":
		return "upstream unreachable: WebSocket handshake failed"
	case "tls":
		return "upstream unreachable: TLS handshake failed"
	case "no_route":
		return "upstream unreachable: no route for " + e.Route
	}
	return "upstream unreachable"
}

func classifyDialError(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return "not_found"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.As(err, &certErr), errors.As(err, &recErr):
		return "tls"
	}
	return "other"
}

// dial opens the upstream connection of one session. ctx bounds the whole
// dial (the caller applies DialTimeout).
func (b *Bridger) dial(ctx context.Context, route Route, inf Info, s Session) (endpoint, error) {
	up := route.Upstream
	fail := func(reason string, err error) (endpoint, error) {
		if reason == "" {
			reason = classifyDialError(err)
		}
		return nil, &DialError{Route: route.Path, Upstream: up, Reason: reason, Err: err}
	}
	switch up.Kind {
	case KindEcho:
		return newEchoEnd(b.o.EchoQueue), nil
	case KindTCP, KindUnix:
		network := "tcp"
		if up.Kind == KindUnix {
			network = "unix"
		}
		c, err := up.dialer().DialContext(ctx, network, up.Addr)
		if err != nil {
			return fail("", err)
		}
		if up.Proxy != ProxyNone {
			if err := writeProxyHeader(ctx, c, up.Proxy, inf, s.LocalAddr()); err != nil {
				c.Close()
				return fail("proxy_header", err)
			}
		}
		return newStreamEnd(c), nil
	case KindWS:
		c, resp, err := websocket.Dial(ctx, up.Addr, &websocket.DialOptions{
			HTTPClient:      b.httpClient,
			CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			reason := ""
			if resp != nil {
				reason = "handshake"
			}
			return fail(reason, err)
		}
		c.SetReadLimit(b.o.MaxMessageSize)
		return &wsEnd{c: c}, nil
	}
	return fail("other", fmt.Errorf("unknown upstream kind %v", up.Kind))
}

// dialer returns the dialer of a tcp or unix upstream. A loopback upstream
// gets no TCP keep-alive: the kernel itself reports a peer on the same host
// that goes away, so probes would find nothing, and switching them on costs
// four setsockopt calls per session (about 9 µs here; 10 of the gateway's 49
// system calls per session in dualbench's sessions scenario were setsockopt).
func (u Upstream) dialer() *net.Dialer {
	d := &net.Dialer{}
	if u.loopback {
		d.KeepAlive = -1
	}
	return d
}

// writeProxyHeader writes a PROXY protocol header carrying the client's
// address (source) and the gateway's address the client reached
// (destination, the unspecified address when unknown).
func writeProxyHeader(ctx context.Context, c net.Conn, v ProxyHeader, inf Info, local net.Addr) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
		defer c.SetWriteDeadline(time.Time{})
	}
	var src, dst net.Addr
	if inf.RemoteAddr.IsValid() {
		ra := netip.AddrPortFrom(inf.RemoteAddr.Addr().Unmap(), inf.RemoteAddr.Port())
		src = net.TCPAddrFromAddrPort(ra)
		var la netip.AddrPort
		if ta, ok := local.(*net.TCPAddr); ok {
			la = ta.AddrPort()
			la = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
		}
		if !la.IsValid() || la.Addr().Is4() != ra.Addr().Is4() {
			unspec := netip.IPv6Unspecified()
			if ra.Addr().Is4() {
				unspec = netip.IPv4Unspecified()
			}
			la = netip.AddrPortFrom(unspec, 0)
		}
		dst = net.TCPAddrFromAddrPort(la)
	}
	h := proxyproto.HeaderProxyFromAddrs(byte(v), src, dst)
	if _, err := h.WriteTo(c); err != nil {
		return fmt.Errorf("wsbridge: writing PROXY header: %w", err)
	}
	return nil
}

func newUpstreamHTTPClient(tlsConf *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // upstreams are dialled directly
		DialContext:         (&net.Dialer{}).DialContext,
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        0,
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: DefaultDialTimeout,
	}
	return &http.Client{Transport: tr}
}
