package resume

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/gobwas/ws"
)

// ErrNotDualgate is returned by UpgradeWebSocket when the client did not
// offer the dualgate.v1 subprotocol; the connection was closed with
// CloseNotDualgate.
var ErrNotDualgate = errors.New("resume: WebSocket client did not offer the " + Subprotocol + " subprotocol")

// UpgradeWebSocket upgrades r to a WebSocket (RFC 6455, subprotocol
// dualgate.v1) and returns it as the Transport of a session, to be served
// with Server.ServeTransport. Check the request's origin first: this does not.
//
// A malformed upgrade request is answered (400 Bad Request, 426 Upgrade
// Required with the supported version) and its error returned. A client that
// does not offer dualgate.v1 gets the upgrade, then a close frame with
// CloseNotDualgate, and ErrNotDualgate is returned.
//
// The Transport reads many frames per system call and writes many messages
// per system call, and holds no buffer while it waits for data.
func UpgradeWebSocket(w http.ResponseWriter, r *http.Request) (Transport, error) {
	u := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == Subprotocol }}
	c, rw, hs, err := u.Upgrade(r, w)
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("resume: WebSocket upgrade: %w", err)
	}
	t := newWSConn(c, false, buffered(rw.Reader))
	if hs.Protocol != Subprotocol {
		t.Close(CloseNotDualgate, "not a dualgate client: subprotocol "+Subprotocol+" required") //nolint:errcheck
		return nil, ErrNotDualgate
	}
	return t, nil
}

// buffered returns a copy of what br read past the request.
func buffered(br *bufio.Reader) []byte {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return append([]byte(nil), b...)
}

// dialWebSocket runs the client's upgrade on c (a TCP or TLS connection to
// u's host) within ctx and returns the Transport.
func dialWebSocket(ctx context.Context, c net.Conn, u *url.URL, header http.Header) (*wsConn, error) {
	stop := ctxDeadline(ctx, c.SetDeadline)
	d := ws.Dialer{Protocols: []string{Subprotocol}}
	if len(header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	br, hs, err := d.Upgrade(c, u)
	if !stop() && ctx.Err() != nil {
		err = ctx.Err()
	}
	c.SetDeadline(timeZero) //nolint:errcheck // a closed conn fails the next I/O
	if err != nil {
		return nil, fmt.Errorf("resume: WebSocket upgrade: %w", err)
	}
	var rest []byte
	if br != nil {
		rest = buffered(br)
		ws.PutReader(br)
	}
	t := newWSConn(c, true, rest)
	if hs.Protocol != Subprotocol {
		t.closeNow() //nolint:errcheck
		return nil, &CloseError{Code: CloseNotDualgate, Reason: "server did not accept the dualgate.v1 subprotocol"}
	}
	return t, nil
}
