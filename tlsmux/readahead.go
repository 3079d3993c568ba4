package tlsmux

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/dualgate/dualgate/internal/rawio"
)

// readAheadSize is how much one system call under a TLS connection may read.
const readAheadSize = 128 << 10

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAheadHeld counts the buffers connections hold (tests check that idle
// ones hold none).
var readAheadHeld atomic.Int64

// readAhead is the connection under a server-side *tls.Conn. crypto/tls
// reads one record (at most 16 KiB) per system call; readAhead instead takes
// everything the socket holds, up to 128 KiB, and serves the records from
// memory: at full speed that is one system call where there were eight.
//
// The buffer comes from a pool and is held only while it has unread bytes:
// a waiting read parks in the runtime's poller holding none (internal/rawio),
// so an idle connection costs no read-ahead memory. Connections without a
// raw socket, and the sniffed bytes the listener still holds, are read as
// they are.
type readAhead struct {
	net.Conn
	raw    *rawio.Reader // nil until the sniffed bytes are read, or for good
	noRaw  bool          // rawio.New found no socket to read directly
	buf    *[]byte       // pooled; nil when nothing is buffered
	r, end int           // unread bytes are (*buf)[r:end]
}

func newReadAhead(c net.Conn) *readAhead { return &readAhead{Conn: c} }

// Read serves buffered bytes first, then reads what the socket holds.
func (c *readAhead) Read(p []byte) (int, error) {
	if c.buf != nil {
		n := copy(p, (*c.buf)[c.r:c.end])
		if c.r += n; c.r == c.end {
			c.Release()
		}
		return n, nil
	}
	if c.raw == nil && !c.noRaw {
		if b, ok := c.Conn.(interface{ Buffered() int }); ok && b.Buffered() > 0 {
			return c.Conn.Read(p) // the sniffed ClientHello
		}
		c.raw = rawio.New(c.Conn)
		c.noRaw = c.raw == nil
	}
	if c.raw == nil || len(p) >= readAheadSize {
		return c.Conn.Read(p)
	}
	n, err := c.raw.Read(c)
	if err != nil || n == 0 {
		c.Release()
		return 0, err
	}
	c.r, c.end = 0, n
	return c.Read(p)
}

// Get lends the pooled buffer to internal/rawio once the socket is readable.
func (c *readAhead) Get() []byte {
	if c.buf == nil {
		c.buf = readAheadPool.Get().(*[]byte)
		readAheadHeld.Add(1)
	}
	return *c.buf
}

// Release gives the buffer back to the pool.
func (c *readAhead) Release() {
	if c.buf != nil {
		readAheadPool.Put(c.buf)
		readAheadHeld.Add(-1)
		c.buf = nil
	}
	c.r, c.end = 0, 0
}

// NetConn returns the wrapped connection (for listener.ClientAddr and
// tlsmux.ConnectionState, which look through wrappers).
func (c *readAhead) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the wrapped connection when it can.
func (c *readAhead) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
