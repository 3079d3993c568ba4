package legacy

import (
	"crypto/rc4"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past that unblocks pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Info describes the transport a legacy session arrived on: the client's
// address (after any trusted PROXY header), the WebSocket route if any, and
// whether the transport was TLS-protected. Sessions keep the Info of their
// first transport.
type Info struct {
	RemoteAddr netip.AddrPort
	Route      string
	Secure     bool
}

// SessionInfo returns the Info of a legacy session conn, as returned by
// Server.Accept or Dial; ok is false for any other net.Conn.
func SessionInfo(c net.Conn) (info Info, ok bool) {
	lc, ok := c.(*Conn)
	if !ok {
		return Info{}, false
	}
	return lc.info, true
}

// Conn is one legacy session: a net.Conn whose reads and writes continue
// across transports. Server.Accept and Dial return it. Its methods are safe
// for concurrent use (one Read and one Write at a time are serialised).
//
// Writes are buffered in the resend ring and sent by the transport's
// writer. Write blocks while half the resend buffer is unsent: the other
// half keeps recently sent bytes that the peer may not have received when
// a transport fails (the format has no acknowledgements).
// Reads return bytes received on any transport, decrypted, in order.
//
// The zero value is not usable.
type Conn struct {
	id      uint64
	key     sessionKey
	encrypt bool
	info    Info
	server  *Server // nil on the client
	client  *client // nil on the server
	log     *slog.Logger
	m       *metrics
	rxMax   int
	linger  time.Duration

	readMu  sync.Mutex // serialises Read
	writeMu sync.Mutex // serialises Write

	// mu guards the session state below. Network I/O never happens under
	// it, so a blocked transport cannot stall a reconnect.
	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every state change
	ring        ring          // sent ciphertext, for resends
	writeCount  uint64        // bytes accepted by Write (== ring.end)
	readCount   uint64        // bytes received from transports
	rx          []byte        // received plaintext not yet Read
	rxOff       int
	readCipher  *rc4.Cipher
	writeCipher *rc4.Cipher
	cur         *transport // nil while detached
	sentMark    uint64     // send offset of the current or last transport
	sentMax     uint64     // highest offset ever sent (resend accounting)
	hwWrite     uint64     // server: client counts of the last accepted reconnect
	hwRead      uint64
	attaches    uint64 // transports attached so far; a handshake that saw another value is stale
	remote      net.Addr
	local       net.Addr
	detachTimer *time.Timer // server: ends the session after ReconnectWait
	ended       bool
	closedLocal bool
	readErr     error // returned by Read once rx is drained
	writeErr    error
	done        chan struct{} // closed when the session ends

	readDeadline  deadline
	writeDeadline deadline
}

func newConn(id uint64, key sessionKey, encrypt bool, resendBuffer, rxMax int, linger time.Duration, log *slog.Logger) *Conn {
	rc, wc := newCiphers(key)
	return &Conn{
		id:            id,
		key:           key,
		encrypt:       encrypt,
		log:           log,
		rxMax:         rxMax,
		linger:        linger,
		changed:       make(chan struct{}),
		ring:          newRing(resendBuffer),
		readCipher:    rc,
		writeCipher:   wc,
		done:          make(chan struct{}),
		readDeadline:  makeDeadline(),
		writeDeadline: makeDeadline(),
	}
}

// ID returns the session ID.
func (c *Conn) ID() uint64 { return c.id }

// Info returns the Info of the session's first transport.
func (c *Conn) Info() Info { return c.info }

// broadcastLocked wakes everything waiting on a state change.
// The caller must hold c.mu.
func (c *Conn) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Read reads received session data. After the session ends it returns the
// remaining buffered bytes and then io.EOF (the peer went away or ended the
// session), ErrSessionLost, or net.ErrClosed after Close.
func (c *Conn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.readDeadline.expired() {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if c.rxOff < len(c.rx) {
			n := copy(b, c.rx[c.rxOff:])
			c.rxOff += n
			if c.rxOff == len(c.rx) {
				c.rx, c.rxOff = c.rx[:0], 0
			}
			c.broadcastLocked() // room for the transport reader
			c.mu.Unlock()
			return n, nil
		}
		if c.readErr != nil {
			err := c.readErr
			c.mu.Unlock()
			return 0, err
		}
		if len(b) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.readDeadline.wait():
		}
	}
}

// Write buffers b for sending, encrypted if the session is. It blocks while
// the resend buffer is full of unsent data (the client is away or slow).
func (c *Conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	n := 0
	for n < len(b) {
		if c.writeDeadline.expired() {
			return n, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if c.writeErr != nil {
			err := c.writeErr
			c.mu.Unlock()
			return n, err
		}
		if room := c.ring.max/2 - int(c.writeCount-c.sentMark); room > 0 {
			k := min(room, len(b)-n)
			var ciph *rc4.Cipher
			if c.encrypt {
				ciph = c.writeCipher
			}
			c.ring.write(b[n:n+k], ciph)
			c.writeCount += uint64(k)
			n += k
			c.broadcastLocked()
			c.mu.Unlock()
			continue
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.writeDeadline.wait():
		}
	}
	return n, nil
}

// Close flushes buffered data to a connected peer (bounded by the linger
// timeout) and ends the session. Later calls return net.ErrClosed. On the
// server the client learns of it when its reconnect is refused.
func (c *Conn) Close() error {
	deadline := time.NewTimer(c.linger)
	defer deadline.Stop()
	c.mu.Lock()
	if c.closedLocal {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closedLocal = true
	timedOut := false
	for c.cur != nil && c.cur.sent < c.writeCount && !c.ended && !timedOut {
		ch, dead := c.changed, c.cur.dead
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dead:
		case <-deadline.C:
			timedOut = true
		}
		c.mu.Lock()
	}
	ended := c.endLocked(net.ErrClosed, net.ErrClosed, "closed")
	if !ended {
		c.readErr, c.writeErr = net.ErrClosed, net.ErrClosed
		c.rx, c.rxOff = nil, 0
	}
	c.mu.Unlock()
	if ended {
		c.afterEnd()
	}
	c.waitClient()
	return nil
}

// endLocked ends the session once: it records the errors Read and Write
// return from now on, kills the transport and wakes every waiter. A local
// close discards unread data. The caller must hold c.mu and call afterEnd
// after unlocking.
func (c *Conn) endLocked(readErr, writeErr error, why string) bool {
	if c.ended {
		return false
	}
	c.ended = true
	c.readErr, c.writeErr = readErr, writeErr
	if readErr == net.ErrClosed {
		c.rx, c.rxOff = nil, 0
	}
	if c.cur != nil {
		c.cur.kill(net.ErrClosed)
		c.cur = nil
	}
	if c.detachTimer != nil {
		c.detachTimer.Stop()
	}
	close(c.done)
	c.broadcastLocked()
	c.log.Info("legacy: session ended", "id", c.id, "reason", why,
		"bytes_written", c.writeCount, "bytes_read", c.readCount)
	return true
}

// afterEnd runs the owner's bookkeeping for an ended session outside c.mu.
func (c *Conn) afterEnd() {
	if c.server != nil {
		c.server.forget(c)
	}
	if c.client != nil {
		c.client.cancel()
	}
}

// LocalAddr returns the local address of the current or last transport.
func (c *Conn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

// RemoteAddr returns the peer address of the current or last transport
// (the Info address on the server when it is known).
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// SetDeadline sets the read and write deadlines of the session (not of a
// transport: deadlines survive reconnects).
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the session's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the session's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.set(t)
	return nil
}

// counts returns the session's write and read counts.
func (c *Conn) counts() (write, read uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeCount, c.readCount
}

var _ net.Conn = (*Conn)(nil)

// readFull is io.ReadFull with the package's error prefix.
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	return err
}
