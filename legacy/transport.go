package legacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// transport is one underlying connection of a session. Its reader and
// writer run until it dies: on an I/O error, when a newer transport takes
// over, or when the session ends. Killing it closes the conn, which
// releases reads and writes blocked on a half-open socket.
type transport struct {
	conn net.Conn
	dead chan struct{}
	once sync.Once
	err  error

	// Guarded by Conn.mu.
	sent  uint64 // stream offset of the next byte to send
	rxPos uint64 // stream offset of the next byte to arrive
}

func newTransport(conn net.Conn, resendBuffer int) *transport {
	limitSendBuffer(conn, resendBuffer/8)
	return &transport{conn: conn, dead: make(chan struct{})}
}

// kill marks the transport dead; runTransport then closes its conn.
func (t *transport) kill(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.dead)
	})
}

// attachLocked makes t the session's transport. The peer has received
// sendFrom bytes, so the writer resends from there (the same ciphertext:
// the RC4 state simply continues); the peer will resend from recvFrom, and
// the reader skips whatever of that already arrived on an older transport,
// so no byte is ever delivered twice. The caller must hold c.mu and have
// checked that the ring holds sendFrom and that recvFrom ≤ readCount.
func (c *Conn) attachLocked(t *transport, sendFrom, recvFrom uint64, remote netip.AddrPort) {
	if old := c.cur; old != nil && old != t {
		old.kill(errors.New("legacy: replaced by a newer transport"))
	}
	c.cur = t
	c.attaches++
	t.sent, t.rxPos = sendFrom, recvFrom
	c.sentMark = sendFrom
	if c.detachTimer != nil {
		c.detachTimer.Stop()
		c.detachTimer = nil
	}
	c.local = t.conn.LocalAddr()
	c.remote = t.conn.RemoteAddr()
	if remote.IsValid() {
		c.remote = net.TCPAddrFromAddrPort(remote)
	}
	c.broadcastLocked()
}

// detach kills t and, if it was current, leaves the session waiting for a
// reconnect.
func (c *Conn) detach(t *transport, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detachLocked(t, err)
}

// detachLocked is detach for callers holding c.mu.
func (c *Conn) detachLocked(t *transport, err error) {
	t.kill(err)
	if c.cur != t {
		return
	}
	c.cur = nil
	c.broadcastLocked()
	if c.server != nil && !c.ended {
		c.detachTimer = time.AfterFunc(c.server.opts.ReconnectWait, c.reconnectExpired)
	}
	c.log.Debug("legacy: transport lost", "id", c.id, "err", err)
}

// reconnectExpired ends a server session whose client did not come back.
func (c *Conn) reconnectExpired() {
	c.mu.Lock()
	if c.cur != nil || c.ended {
		c.mu.Unlock()
		return
	}
	ended := c.endLocked(io.EOF, ErrSessionLost, "client did not reconnect")
	c.mu.Unlock()
	if ended {
		c.afterEnd()
	}
}

// runTransport runs t's reader and writer until t dies or ctx ends, then
// closes the conn and waits for both.
func (c *Conn) runTransport(ctx context.Context, t *transport, readIdle time.Duration) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.writeLoop(t)
	}()
	go func() {
		defer wg.Done()
		c.readLoop(t, readIdle)
	}()
	select {
	case <-t.dead:
	case <-ctx.Done():
		c.detach(t, ctx.Err())
	}
	_ = t.conn.SetDeadline(aLongTimeAgo) // unblock before a possibly slow Close
	_ = t.conn.Close()
	wg.Wait()
}

// writeLoop sends ring data from t.sent on until t dies.
func (c *Conn) writeLoop(t *transport) {
	buf := make([]byte, chunkSize)
	for {
		c.mu.Lock()
		for c.cur == t && t.sent == c.writeCount {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-t.dead:
				return
			}
			c.mu.Lock()
		}
		if c.cur != t {
			c.mu.Unlock()
			return
		}
		from := t.sent
		n := int(min(uint64(len(buf)), c.writeCount-from))
		c.ring.read(buf[:n], from)
		c.mu.Unlock()

		if _, err := t.conn.Write(buf[:n]); err != nil {
			c.detach(t, fmt.Errorf("legacy: transport write: %w", err))
			return
		}

		c.mu.Lock()
		if c.cur == t {
			t.sent = from + uint64(n)
			c.sentMark = t.sent
			resent := 0
			if from < c.sentMax {
				resent = int(min(c.sentMax, t.sent) - from)
			}
			c.sentMax = max(c.sentMax, t.sent)
			c.m.sent(n, resent)
			c.broadcastLocked()
		}
		c.mu.Unlock()
	}
}

// readLoop receives into the session until t dies, holding back while the
// receive buffer is full so that a slow reader pushes back on the peer.
func (c *Conn) readLoop(t *transport, readIdle time.Duration) {
	buf := make([]byte, chunkSize)
	for {
		c.mu.Lock()
		for c.cur == t && len(c.rx)-c.rxOff >= c.rxMax {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-t.dead:
				return
			}
			c.mu.Lock()
		}
		if c.cur != t {
			c.mu.Unlock()
			return
		}
		space := min(len(buf), c.rxMax-(len(c.rx)-c.rxOff))
		c.mu.Unlock()

		if readIdle > 0 {
			_ = t.conn.SetReadDeadline(time.Now().Add(readIdle))
		}
		n, err := t.conn.Read(buf[:space])
		if err != nil {
			// Bytes that come with an error are dropped, not delivered:
			// websocket.NetConn returns a cut frame's payload still masked
			// along with its error. Dropping is always safe because the
			// read count excludes them, so the peer resends them.
			c.detach(t, fmt.Errorf("legacy: transport read: %w", err))
			return
		}
		if n > 0 && !c.deliver(t, buf[:n]) {
			return
		}
	}
}

// deliver appends bytes that arrived on t to the session, skipping those
// already received on an older transport. It reports whether t is still
// the session's transport.
func (c *Conn) deliver(t *transport, p []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != t {
		return false
	}
	if t.rxPos > c.readCount {
		// A gap: the peer resent from beyond what we have. Impossible with
		// the counts we checked; refuse rather than corrupt the stream.
		c.detachLocked(t, fmt.Errorf("legacy: stream gap at %d (have %d)", t.rxPos, c.readCount))
		return false
	}
	if dup := c.readCount - t.rxPos; dup > 0 {
		skip := min(dup, uint64(len(p)))
		t.rxPos += skip
		p = p[skip:]
	}
	if len(p) == 0 {
		return true
	}
	if c.encrypt {
		c.readCipher.XORKeyStream(p, p)
	}
	if c.rxOff > 0 && cap(c.rx)-len(c.rx) < len(p) {
		n := copy(c.rx, c.rx[c.rxOff:])
		c.rx, c.rxOff = c.rx[:n], 0
	}
	c.rx = append(c.rx, p...)
	c.readCount += uint64(len(p))
	t.rxPos += uint64(len(p))
	c.m.received(len(p))
	c.broadcastLocked()
	return true
}

// limitSendBuffer caps the kernel send buffer of conn's socket, unwrapping
// TLS (NetConn) to reach it. Without acknowledgements, bytes sitting in a
// dead socket's buffer are lost and must still be in the resend ring when
// the peer comes back; an autotuned buffer of several MiB would outgrow
// the default 1 MiB ring. Conns that hide their socket (WebSocket) are left
// alone: the operator sizes ResendBuffer for them.
func limitSendBuffer(conn net.Conn, n int) {
	for range 8 {
		if s, ok := conn.(interface{ SetWriteBuffer(int) error }); ok {
			_ = s.SetWriteBuffer(n)
			return
		}
		u, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		conn = u.NetConn()
	}
}
