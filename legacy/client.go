package legacy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// client is the reconnecting side of a Conn returned by Dial.
type client struct {
	dial   DialFunc
	opts   DialOptions
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	exited chan struct{} // closed when the supervisor returns
}

// Dial opens a legacy session to address over network (for example "tcp")
// and keeps it alive across transport failures by reconnecting. ctx bounds
// only the first handshake.
func Dial(ctx context.Context, network, address string, opts *DialOptions) (*Conn, error) {
	var d net.Dialer
	return DialWith(ctx, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, network, address)
	}, opts)
}

// DialWith is Dial with a custom transport dialer, called for the first
// connection and for every reconnect: use it for TLS or for WebSocket
// (WebSocketConn(context.Background(), ws)).
func DialWith(ctx context.Context, dial DialFunc, opts *DialOptions) (*Conn, error) {
	return dialWith(ctx, dial, opts, rand.Reader)
}

func dialWith(ctx context.Context, dial DialFunc, opts *DialOptions, random io.Reader) (*Conn, error) {
	o := opts.cloneWithDefaults()
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()
	conn, err := dial(hctx)
	if err != nil {
		return nil, fmt.Errorf("legacy: dial: %w", err)
	}
	c, err := clientHandshake(hctx, conn, &o, random)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	cl := &client{dial: dial, opts: o, exited: make(chan struct{})}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	c.client = cl
	c.info = Info{RemoteAddr: netipAddrPort(conn.RemoteAddr())}
	t := newTransport(conn, c.ring.max)
	c.mu.Lock()
	c.attachLocked(t, 0, 0, netipAddrPort(conn.RemoteAddr()))
	c.mu.Unlock()
	go c.supervise(t)
	return c, nil
}

// clientHandshake runs the new-session handshake on conn.
func clientHandshake(ctx context.Context, conn net.Conn, o *DialOptions, random io.Reader) (c *Conn, err error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("legacy: handshake: %w", ctx.Err())
		}
		_ = conn.SetDeadline(time.Time{})
	}()
	priv, pub, err := newKeyPair(random)
	if err != nil {
		return nil, err
	}
	req := appendNewRequest(nil, pub)
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("legacy: handshake: %w", err)
	}
	var b [newResponseLen]byte
	if err := readFull(conn, b[:]); err != nil {
		return nil, fmt.Errorf("legacy: handshake: %w", err)
	}
	resp, err := parseNewResponse(b[:])
	if err != nil {
		return nil, err
	}
	key := keyFromSecret(dhSecret(priv, resp.serverPub))
	answer := proof(resp.challenge[:], key)
	if _, err := conn.Write(answer[:]); err != nil {
		return nil, fmt.Errorf("legacy: handshake: %w", err)
	}
	c = newConn(0, key, o.Encrypt, o.ResendBuffer, o.ReceiveBuffer, o.LingerTimeout, o.Logger)
	c.readCipher.XORKeyStream(resp.encID[:], resp.encID[:])
	c.id = binary.LittleEndian.Uint64(resp.encID[:])
	return c, nil
}

// supervise runs the current transport and reconnects when it fails, until
// the session ends. It is the client's only long-lived goroutine besides
// the transport's reader and writer, and Close waits for it.
func (c *Conn) supervise(t *transport) {
	cl := c.client
	defer close(cl.exited)
	for {
		c.runTransport(cl.ctx, t, cl.opts.ReadIdleTimeout)
		if cl.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		ended := c.ended
		c.mu.Unlock()
		if ended {
			return
		}
		if t = c.reconnectLoop(); t == nil {
			return
		}
	}
}

// reconnectLoop retries reconnecting with backoff until it succeeds, the
// server refuses, ReconnectWait passes or the conn is closed.
func (c *Conn) reconnectLoop() *transport {
	cl := c.client
	giveUp := time.NewTimer(cl.opts.ReconnectWait)
	defer giveUp.Stop()
	pause := cl.opts.RetryInterval
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(pause):
			case <-giveUp.C:
				c.endWith(fmt.Errorf("%w: reconnect gave up: %w", ErrSessionLost, lastErr), "reconnect gave up")
				return nil
			case <-cl.ctx.Done():
				return nil
			}
			pause = min(2*pause, cl.opts.MaxRetryInterval)
		}
		t, err := c.reconnectOnce()
		switch {
		case err == nil:
			return t
		case errors.Is(err, errRefused):
			c.mu.Lock()
			ended := c.endLocked(io.EOF, fmt.Errorf("%w: %w", ErrSessionLost, err), "reconnect refused")
			c.mu.Unlock()
			if ended {
				c.afterEnd()
			}
			return nil
		case cl.ctx.Err() != nil:
			return nil
		}
		lastErr = err
		cl.opts.Logger.Debug("legacy: reconnect attempt failed", "id", c.id, "attempt", attempt, "err", err)
	}
}

// errRefused is the server's all-zero answer (or counts we cannot continue
// from): the session cannot be resumed.
var errRefused = errors.New("legacy: reconnect refused")

// reconnectOnce dials and runs one reconnect handshake.
func (c *Conn) reconnectOnce() (*transport, error) {
	cl := c.client
	ctx, cancel := context.WithTimeout(cl.ctx, cl.opts.HandshakeTimeout)
	defer cancel()
	conn, err := cl.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("legacy: reconnect dial: %w", err)
	}
	t, err := c.clientReconnect(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return t, nil
}

func (c *Conn) clientReconnect(ctx context.Context, conn net.Conn) (t *transport, err error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("legacy: reconnect: %w", ctx.Err())
		}
		if err == nil {
			_ = conn.SetDeadline(time.Time{})
		}
	}()
	// No transport runs now, so readCount is frozen; writeCount may grow
	// with Writes, which only extends what we send after the resend.
	w, r := c.counts()
	req := reconnectRequest{id: c.id, writeCount: w, readCount: r}
	req.sign(c.key)
	b := req.marshal()
	if _, err := conn.Write(b[:]); err != nil {
		return nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	var rb [reconnectResponseLen]byte
	if err := readFull(conn, rb[:]); err != nil {
		return nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	resp, _ := parseReconnectResponse(rb[:])
	if resp.refused() {
		return nil, fmt.Errorf("%w by the server", errRefused)
	}
	c.mu.Lock()
	ok := countsConsistent(c.writeCount, c.readCount, resp.writeCount, resp.readCount, c.ring.holds) &&
		resp.readCount <= w && c.readCount == r
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: inconsistent counts: server %d/%d, client %d/%d",
			errRefused, resp.writeCount, resp.readCount, w, r)
	}
	answer := proof(resp.challenge[:], c.key)
	if _, err := conn.Write(answer[:]); err != nil {
		return nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	t = newTransport(conn, c.ring.max)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return nil, net.ErrClosed
	}
	c.attachLocked(t, resp.readCount, r, netipAddrPort(conn.RemoteAddr()))
	return t, nil
}

// waitClient waits for the client's supervisor after the session ended.
func (c *Conn) waitClient() {
	if c.client != nil {
		<-c.client.exited
	}
}

// netipAddrPort returns a's address when it is a TCP address.
func netipAddrPort(a net.Addr) (ap netip.AddrPort) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return ap
}
