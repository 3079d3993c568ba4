package listener

import (
	"net"
	"net/netip"
	"sync"

	"github.com/dualgate/dualgate/sniff"
)

// Conn is a classified connection handed out by a Listener. It replays the
// bytes read while classifying, then reads from the socket; deadlines pass
// through to the socket; RemoteAddr is the real client address.
//
// Like a net.Conn, a Conn is safe for one reader and one writer at a time,
// and Close is safe to call concurrently and more than once.
type Conn struct {
	net.Conn // the accepted socket

	l         *Listener
	kind      sniff.Kind
	client    netip.AddrPort // real client: PROXY source or socket peer
	remote    net.Addr       // client as a net.Addr
	ambiguous bool
	proxied   bool
	ipCounted bool

	peeked []byte // bytes read while classifying, not yet returned by Read
	buf    [sniff.MaxPrefixLen]byte

	closeOnce sync.Once
	closeErr  error
}

// Read returns the peeked bytes first, then reads from the socket.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr returns the real client address (see ClientAddr) as a
// *net.TCPAddr.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// PeerAddr returns the address of the socket's peer: the proxy, when the
// connection arrived through a trusted PROXY header.
func (c *Conn) PeerAddr() net.Addr { return c.Conn.RemoteAddr() }

// ClientAddr returns the real client address.
func (c *Conn) ClientAddr() netip.AddrPort { return c.client }

// Kind returns the kind the connection was classified as.
func (c *Conn) Kind() sniff.Kind { return c.kind }

// Ambiguous reports whether the client sent nothing before the sniff
// deadline, so that the kind comes from the IP cache fallback.
func (c *Conn) Ambiguous() bool { return c.ambiguous }

// Proxied reports whether the client address came from a PROXY header.
func (c *Conn) Proxied() bool { return c.proxied }

// NetConn returns the underlying socket.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Buffered returns how many sniffed bytes Read has still to return before it
// reads from the socket. Once it is 0, reading NetConn directly is the same
// as reading c (internal/rawio relies on this). Call it from the reading
// goroutine.
func (c *Conn) Buffered() int { return len(c.peeked) }

// CloseWrite shuts down the writing side, when the socket supports it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: "tcp", Addr: c.remote, Err: errCloseWriteUnsupported}
}

// Close closes the socket and releases the connection's place in the
// global and per-IP limits.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.l.open.Add(-1)
		if c.ipCounted {
			c.l.releaseIP(c.client.Addr())
		}
	})
	return c.closeErr
}

type closeWriteError struct{}

func (closeWriteError) Error() string { return "listener: CloseWrite not supported by the socket" }

var errCloseWriteUnsupported error = closeWriteError{}

// Unwrap returns the *Conn under c, following NetConn methods (as offered
// by *tls.Conn and the tlsmux connections), and false when there is none.
func Unwrap(c net.Conn) (*Conn, bool) {
	for range 16 {
		switch v := c.(type) {
		case *Conn:
			return v, true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

// ClientAddr returns the real client address of c: the one the sniffing
// listener found under it, else c.RemoteAddr() parsed. The address is
// unmapped (IPv4-mapped IPv6 becomes IPv4).
func ClientAddr(c net.Conn) netip.AddrPort {
	if lc, ok := Unwrap(c); ok {
		return lc.client
	}
	return addrPortOf(c.RemoteAddr())
}

func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch v := a.(type) {
	case *net.TCPAddr:
		ap = v.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
