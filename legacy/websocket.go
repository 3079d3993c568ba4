package legacy

import (
	"context"
	"net"

	"github.com/coder/websocket"
)

// WebSocketConn adapts a WebSocket connection to the net.Conn that
// ServeConn (on a server) or a DialFunc (on a client) takes, carrying the
// legacy byte stream in binary messages. Use it instead of a bare
// websocket.NetConn.
//
// It differs from websocket.NetConn in one way: Close drops the connection
// at once, without the WebSocket close handshake. The legacy protocol has no
// close message of its own, so the handshake adds nothing, and it can hang:
// github.com/coder/websocket (v1.8.15) reads the rest of a frame that a dead
// peer cut in the middle before it reads the peer's close frame, with no
// deadline, so closing a half-open transport would block its goroutine
// forever. A legacy peer treats the dropped connection as a transport loss,
// which is what it is.
//
// The context bounds reads and writes as in websocket.NetConn.
func WebSocketConn(ctx context.Context, c *websocket.Conn) net.Conn {
	return &wsConn{Conn: websocket.NetConn(ctx, c, websocket.MessageBinary), ws: c}
}

// wsConn is a websocket.NetConn whose Close skips the close handshake.
type wsConn struct {
	net.Conn
	ws *websocket.Conn
}

// Close closes the WebSocket connection without a close handshake.
func (c *wsConn) Close() error {
	err := c.ws.CloseNow()
	_ = c.Conn.Close() // stops the NetConn's deadline timers; the conn is already closed
	return err
}
