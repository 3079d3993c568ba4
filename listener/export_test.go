package listener

import (
	"net"
	"net/netip"

	"github.com/dualgate/dualgate/sniff"
)

// ClassifyConn runs the sniff stage of l on raw, outside the accept loop,
// and closes raw. It is for the PROXY header fuzz test.
func ClassifyConn(l *Listener, raw net.Conn) (kind sniff.Kind, client netip.AddrPort, proxied bool, reason string) {
	c := &Conn{Conn: raw, l: l, remote: raw.RemoteAddr()}
	c.peeked = c.buf[:0]
	c.client = addrPortOf(c.remote)
	l.open.Add(1) // Close releases it
	reason, _ = l.classify(c)
	_ = c.Close()
	return c.kind, c.client, c.proxied, reason
}
