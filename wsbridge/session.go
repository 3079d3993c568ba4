package wsbridge

import (
	"context"
	"net"
	"net/netip"
)

// MessageType is the type of a message: binary or UTF-8 text. Its values
// match github.com/coder/websocket.MessageType.
type MessageType int

// Message types.
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// CloseCode is a session close code of the resumable stream protocol
// (docs/protocol.md §7).
type CloseCode uint16

// Close codes the bridge sends.
const (
	CloseNormal              CloseCode = 1000
	CloseGoingAway           CloseCode = 1001
	CloseInternalError       CloseCode = 1011
	CloseUpstreamUnreachable CloseCode = 4010
	CloseUpstreamClosed      CloseCode = 4011
	CloseNotDualgate         CloseCode = 4012
)

// Info describes the client of a session.
type Info struct {
	// Route is the path of the route the session arrived on ("" if unknown).
	Route string
	// RemoteAddr is the real client address.
	RemoteAddr netip.AddrPort
	// Secure reports whether the client's transport was TLS.
	Secure bool
}

// Session is one client session as the bridge sees it: a net.Conn, where
// Read returns the client's bytes and Write sends bytes to the client. Both
// resume sessions and legacy sessions satisfy it. A session may also
// implement MessageSession (then message boundaries are kept towards a
// WebSocket upstream), ErrorCloser (then dial failures and upstream closes
// reach the client with a code and reason) and InfoSession.
type Session interface {
	net.Conn
}

// MessageSession is implemented by sessions that carry messages.
// ReadMessage returns one whole message (io.EOF after a clean close by the
// client); WriteMessage sends one message and may keep p only until it
// returns.
type MessageSession interface {
	ReadMessage(ctx context.Context) (MessageType, []byte, error)
	WriteMessage(ctx context.Context, typ MessageType, p []byte) error
}

// ErrorCloser is implemented by sessions that can close with a protocol
// close code and reason. The session's pending output is sent first.
type ErrorCloser interface {
	CloseWithError(code CloseCode, reason string) error
}

// InfoSession is implemented by sessions that know their route and client.
// For other sessions, and sessions whose Info has no route (byte-stream
// resume transports), the bridge uses RemoteAddr and Options.DefaultRoute.
type InfoSession interface {
	Info() Info
}

// sessionInfo returns the info of s.
func sessionInfo(s Session, o *Options) Info {
	defaultRoute := o.DefaultRoute
	if is, ok := s.(InfoSession); ok {
		inf := is.Info()
		if inf.Route == "" {
			inf.Route = defaultRoute
		}
		return inf
	}
	if o.SessionInfo != nil {
		if inf, ok := o.SessionInfo(s); ok {
			if inf.Route == "" {
				inf.Route = defaultRoute
			}
			return inf
		}
	}
	inf := Info{Route: defaultRoute}
	if a := s.RemoteAddr(); a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			inf.RemoteAddr = ap
		}
	}
	return inf
}
