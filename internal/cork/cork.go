// Package cork lets a TLS connection write a burst of records with one
// system call. crypto/tls writes each record (16 KiB at most) with its own
// Write on the connection under it; a Conn placed there gathers the records
// written between Cork and Uncork and writes them at once. Outside a burst
// (handshakes, alerts, every other user of the connection) writes pass
// straight through.
package cork

import (
	"net"
	"sync"
)

// Conn is a net.Conn whose writes can be gathered. Make one with New and
// put it under a *tls.Conn (tls.Client or tls.Server). Safe for concurrent
// use; Cork and Uncork are for the one writer of the TLS connection.
type Conn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	bp     *[]byte
}

// maxBurst is the capacity the pooled buffers start with: a burst of 128 KiB
// of messages plus a 64 KiB one, in records.
const maxBurst = 200 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, 0, maxBurst); return &b }}

// New returns c as a Conn.
func New(c net.Conn) *Conn { return &Conn{Conn: c} }

// NetConn returns the connection under c (for listener.Unwrap and the like).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Write writes p, or gathers it while corked.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		*c.bp = append(*c.bp, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Cork starts gathering writes.
func (c *Conn) Cork() {
	c.mu.Lock()
	if !c.corked {
		c.corked = true
		c.bp = pool.Get().(*[]byte)
	}
	c.mu.Unlock()
}

// Uncork writes what was gathered, with one write, and stops gathering.
func (c *Conn) Uncork() error {
	c.mu.Lock()
	if !c.corked {
		c.mu.Unlock()
		return nil
	}
	c.corked = false
	bp := c.bp
	c.bp = nil
	c.mu.Unlock()
	var err error
	if len(*bp) > 0 {
		_, err = c.Conn.Write(*bp)
	}
	*bp = (*bp)[:0]
	pool.Put(bp)
	return err
}

// Of returns the Conn under a TLS connection (anything with NetConn), if
// there is one.
func Of(c net.Conn) *Conn {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		if cc, ok := w.NetConn().(*Conn); ok {
			return cc
		}
	}
	return nil
}
