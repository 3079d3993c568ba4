package legacy

import "errors"

// ErrServerClosed is returned by Accept and ServeConn once the server is
// shut down or closed.
var ErrServerClosed = errors.New("legacy: server closed")

// ErrSessionLost is returned by Write (and Read, after the buffered data)
// when the session ended without a local Close: the server refused the
// reconnect, the peer did not come back within the reconnect wait, or the
// server shut down. On the client, Read returns io.EOF instead when the
// server refused the reconnect because it had ended the session.
var ErrSessionLost = errors.New("legacy: session lost")
