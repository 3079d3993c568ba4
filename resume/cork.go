package resume

import (
	"crypto/tls"
	"net"
	"sync"
)

// corkedConn sits under a client's *tls.Conn so that a burst of TLS records
// (a batch of up to 128 KiB is eight records) goes out with one system call:
// between cork and uncork the records are gathered in a pooled buffer.
// Outside a burst (the handshake, alerts) writes pass straight through.
type corkedConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	bp     *[]byte
}

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, flushBytes+maxMessageLen+8<<10); return &b }}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		*c.bp = append(*c.bp, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *corkedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.bp = corkPool.Get().(*[]byte)
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering.
func (c *corkedConn) uncork() error {
	c.mu.Lock()
	c.corked = false
	bp := c.bp
	c.bp = nil
	c.mu.Unlock()
	var err error
	if len(*bp) > 0 {
		_, err = c.Conn.Write(*bp)
	}
	*bp = (*bp)[:0]
	corkPool.Put(bp)
	return err
}

// corkOf returns the corkedConn under a client's TLS connection, if any.
func corkOf(c net.Conn) *corkedConn {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkedConn); ok {
			return cc
		}
	}
	return nil
}
