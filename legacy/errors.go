package legacy

import (
	"errors"
	"fmt"
	"net"
)

// ErrServerClosed is returned by Accept and ServeConn once the server is
// shut down or closed. It wraps net.ErrClosed, so accept loops that stop on
// errors.Is(err, net.ErrClosed) (as wsbridge.Serve does) stop cleanly.
var ErrServerClosed = fmt.Errorf("legacy: server closed: %w", net.ErrClosed)

// ErrSessionLost is returned by Write (and Read, after the buffered data)
// when the session ended without a local Close: the server refused the
// reconnect, the peer did not come back within the reconnect wait, or the
// server shut down. On the client, Read returns io.EOF instead when the
// server refused the reconnect because it had ended the session.
var ErrSessionLost = errors.New("legacy: session lost")
