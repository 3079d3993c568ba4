package resume

// The WebSocket carrier (RFC 6455) of a session, framed here rather than by
// a general WebSocket library, because a session needs little of WebSocket
// (binary messages of at most 64 KiB, ping, close) and much of speed:
//
//   - reads take as many frames as one system call brings into one pooled
//     buffer and unmask them in place (the session then decrypts in place);
//   - the flusher frames and masks up to a burst of messages into one buffer
//     and writes it with one system call (batchTransport);
//   - a transport waiting for data holds no buffer (internal/rawio).
//
// The HTTP upgrade and the client's handshake use github.com/gobwas/ws
// (ws_upgrade.go), as does masking (its assembly XOR).

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/dualgate/dualgate/internal/cork"
	"github.com/dualgate/dualgate/internal/rawio"
)

const (
	wsMaxHeader    = 14        // 2 + 8 (64-bit length) + 4 (mask key)
	wsMaxControl   = 125       // largest control frame payload
	wsReadBufSize  = 128 << 10 // two largest frames and then some
	wsWriteTimeout = time.Second

	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xA

	wsStatusProtocolError   = 1002
	wsStatusUnsupportedData = 1003
	wsStatusTooBig          = 1009
)

var wsReadPool = sync.Pool{New: func() any { b := make([]byte, wsReadBufSize); return &b }}

// aLongTimeAgo is a deadline that has passed: it makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// wsConn is a Transport over a WebSocket connection whose upgrade is done.
// ReadMessage is for one goroutine at a time; the messages it returns may
// be modified by the caller (the session decrypts them in place) and are
// valid until the next call. Writes are serialised by wmu.
type wsConn struct {
	c      net.Conn
	client bool          // masks what it sends; expects unmasked frames
	raw    *rawio.Reader // nil: read with c.Read (TLS), holding the buffer while waiting
	cork   *cork.Conn    // under TLS: a batch's records go out with one system call

	// Reading.
	rb   wsReadBuf
	frag *[]byte   // a fragmented message being assembled (msgPool); rare
	held *[]byte   // the assembled message last returned, pooled again on the next call
	rdl  time.Time // read deadline set on c

	// Writing, guarded by wmu.
	wmu       sync.Mutex
	wdl       time.Time
	fmask     [4]byte // flusher: key of the message between beginMessage and endMessage
	rng       *rand.ChaCha8
	closeSent bool

	closeOnce sync.Once
	closeErr  error
	pmu       sync.Mutex // park against closeNow
	closing   bool       // guarded by pmu
}

// wsReadBuf is the read storage: a pooled buffer held only while it has
// unread bytes (or the message last returned), lent to rawio while reading.
type wsReadBuf struct {
	bp   *[]byte
	r, w int // unread bytes are (*bp)[r:w]
}

func (b *wsReadBuf) Get() []byte {
	if b.bp == nil {
		b.bp = wsReadPool.Get().(*[]byte)
		b.r, b.w = 0, 0
	}
	return (*b.bp)[b.w:]
}

func (b *wsReadBuf) Release() {
	if b.bp != nil && b.r == b.w {
		wsReadPool.Put(b.bp)
		b.bp = nil
		b.r, b.w = 0, 0
	}
}

// newWSConn returns the transport of an upgraded connection. buffered are
// bytes the upgrade read past its end (the start of the first frames).
func newWSConn(c net.Conn, client bool, buffered []byte) *wsConn {
	t := &wsConn{c: c, client: client}
	if client {
		var seed [32]byte
		crand.Read(seed[:]) //nolint:errcheck // never fails (Go 1.24+)
		t.rng = rand.NewChaCha8(seed)
	}
	if len(buffered) > 0 {
		copy(t.rb.Get(), buffered) // at most the HTTP reader's size (4 KiB)
		t.rb.w = len(buffered)
	}
	t.raw = rawio.New(c)
	t.cork = cork.Of(c)
	return t
}

// ReadMessage returns the next binary message, answering pings and the
// peer's close on the way.
func (t *wsConn) ReadMessage(ctx context.Context) ([]byte, error) {
	return t.readMessage(ctx, true)
}

// readMessage reads the next message, waiting for bytes (fill) or, without
// wait, saying errWouldBlock when the socket has none now (fillNow).
func (t *wsConn) readMessage(ctx context.Context, wait bool) ([]byte, error) {
	t.releaseHeld()
	for {
		msg, done, err := t.nextMessage()
		if err != nil {
			return nil, err
		}
		if done {
			return msg, nil
		}
		if wait {
			err = t.fill(ctx)
		} else {
			err = t.fillNow()
		}
		if err != nil {
			return nil, err
		}
	}
}

// canPoll reports whether the transport can wait for data with
// waitReadable and read without waiting with tryReadMessage.
func (t *wsConn) canPoll() bool { return t.raw != nil }

// tryReadMessage is ReadMessage without waiting: errWouldBlock when no whole
// message is buffered and the socket has nothing more now.
func (t *wsConn) tryReadMessage() ([]byte, error) {
	if !t.rdl.IsZero() { // left by the handshake or a cancelled wait
		if err := t.c.SetReadDeadline(timeZero); err != nil {
			return nil, err
		}
		t.rdl = timeZero
	}
	return t.readMessage(context.Background(), false)
}

// fillNow reads what the socket has now: errWouldBlock if nothing.
func (t *wsConn) fillNow() error {
	if t.rb.bp != nil && t.rb.r == t.rb.w {
		t.rb.Release()
	}
	n, err := t.raw.ReadNow(&t.rb)
	t.rb.w += n
	switch {
	case err == rawio.ErrWouldBlock:
		return errWouldBlock
	case errors.Is(err, io.EOF):
		t.rb.Release()
		return io.ErrUnexpectedEOF
	case err != nil:
		t.rb.Release()
		return err
	}
	return nil
}

// waitReadable parks until the socket has data (or an end), holding no
// buffer, and reads what is there; or until ctx ends. Call it after
// tryReadMessage said errWouldBlock.
func (t *wsConn) waitReadable(ctx context.Context) error { return t.fill(ctx) }

// waitReadableUntil is waitReadable with the deadline dl: quiet (and no
// error) when nothing arrived by then. The next tryReadMessage clears the
// deadline.
func (t *wsConn) waitReadableUntil(dl time.Time) (bool, error) {
	if t.rb.bp != nil && t.rb.r == t.rb.w { // nothing unread: wait without a buffer
		t.rb.Release()
	}
	if err := t.c.SetReadDeadline(dl); err != nil {
		return false, err
	}
	t.rdl = dl
	n, err := t.raw.Read(&t.rb)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return true, nil
	}
	return false, t.took(n, err)
}

// park runs fn in a goroutine of its own once the socket has something to
// report, with no goroutine waiting meanwhile (internal/rawio's epoll); or
// at once when the transport is closed first. rawio.ErrNoPark: the caller
// waits with waitReadable instead. Call it after tryReadMessage said
// errWouldBlock, or waitReadableUntil said quiet.
func (t *wsConn) park(fn func()) error {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if t.closing {
		return net.ErrClosed
	}
	return t.raw.Park(fn)
}

func (t *wsConn) setReadDeadline(ctx context.Context) error {
	dl, _ := ctx.Deadline()
	if !dl.Equal(t.rdl) {
		if err := t.c.SetReadDeadline(dl); err != nil {
			return err
		}
		t.rdl = dl
	}
	return nil
}

// releaseBuffers gives the read buffers back to their pools once the
// transport is done with (its reader calls it when reading ends).
func (t *wsConn) releaseBuffers() {
	t.releaseHeld()
	if t.frag != nil {
		msgPool.Put(t.frag)
		t.frag = nil
	}
	if t.rb.bp != nil {
		wsReadPool.Put(t.rb.bp)
		t.rb.bp = nil
		t.rb.r, t.rb.w = 0, 0
	}
}

func (t *wsConn) releaseHeld() {
	if t.held != nil {
		msgPool.Put(t.held)
		t.held = nil
	}
}

// nextMessage consumes buffered frames until a whole message is there (it
// is returned, done) or more bytes are needed (not done).
func (t *wsConn) nextMessage() ([]byte, bool, error) {
	for {
		op, fin, payload, ok, err := t.nextFrame()
		if err != nil || !ok {
			return nil, false, err
		}
		switch op {
		case wsOpPing:
			if err := t.writeControl(wsOpPong, payload); err != nil {
				return nil, false, err
			}
		case wsOpPong:
		case wsOpClose:
			return nil, false, t.peerClosed(payload)
		case wsOpText:
			t.fail(wsStatusUnsupportedData, "text message")
			return nil, false, protoErr("text WebSocket message")
		case wsOpBinary:
			if t.frag != nil {
				return nil, false, t.fail(wsStatusProtocolError, "new message inside a fragmented one")
			}
			if fin {
				if len(payload) == 0 {
					return nil, false, protoErr("empty WebSocket message")
				}
				return payload, true, nil
			}
			t.frag = msgPool.Get().(*[]byte)
			*t.frag = append((*t.frag)[:0], payload...)
		case wsOpContinuation:
			if t.frag == nil {
				return nil, false, t.fail(wsStatusProtocolError, "continuation without a message")
			}
			if len(*t.frag)+len(payload) > maxMessageLen {
				return nil, false, t.fail(wsStatusTooBig, "message too big")
			}
			*t.frag = append(*t.frag, payload...)
			if fin {
				t.held, t.frag = t.frag, nil
				if len(*t.held) == 0 { // as for a single frame
					return nil, false, protoErr("empty WebSocket message")
				}
				return *t.held, true, nil
			}
		default:
			return nil, false, t.fail(wsStatusProtocolError, fmt.Sprintf("reserved opcode %#x", op))
		}
	}
}

// nextFrame decodes the next buffered frame, unmasking its payload in
// place; ok is false when the frame is not all buffered yet.
func (t *wsConn) nextFrame() (op byte, fin bool, payload []byte, ok bool, err error) {
	if t.rb.bp == nil {
		return 0, false, nil, false, nil
	}
	buf := *t.rb.bp
	b := buf[t.rb.r:t.rb.w]
	if len(b) < 2 {
		return t.needMore(2)
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0F
	if b[0]&0x70 != 0 {
		return 0, false, nil, false, t.fail(wsStatusProtocolError, "reserved bits set")
	}
	masked := b[1]&0x80 != 0
	if masked == t.client {
		if t.client {
			return 0, false, nil, false, t.fail(wsStatusProtocolError, "masked frame from the server")
		}
		return 0, false, nil, false, t.fail(wsStatusProtocolError, "unmasked frame from the client")
	}
	n, hl := uint64(b[1]&0x7F), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return t.needMore(4)
		}
		n, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return t.needMore(10)
		}
		n, hl = binary.BigEndian.Uint64(b[2:]), 10
	}
	if op >= wsOpClose {
		if n > wsMaxControl || !fin {
			return 0, false, nil, false, t.fail(wsStatusProtocolError, "bad control frame")
		}
	} else if n > maxMessageLen {
		return 0, false, nil, false, t.fail(wsStatusTooBig, "message too big")
	}
	var key [4]byte
	if masked {
		if len(b) < hl+4 {
			return t.needMore(hl + 4)
		}
		copy(key[:], b[hl:hl+4])
		hl += 4
	}
	if uint64(len(b)) < uint64(hl)+n {
		return t.needMore(hl + int(n))
	}
	payload = b[hl : hl+int(n)]
	if masked {
		ws.Cipher(payload, key, 0)
	}
	t.rb.r += hl + int(n)
	return op, fin, payload, true, nil
}

// needMore makes room for a frame of size bytes at the start of the unread
// bytes and reports that it is not buffered yet.
func (t *wsConn) needMore(size int) (byte, bool, []byte, bool, error) {
	if t.rb.r+size > len(*t.rb.bp) {
		n := copy(*t.rb.bp, (*t.rb.bp)[t.rb.r:t.rb.w])
		t.rb.r, t.rb.w = 0, n
	}
	return 0, false, nil, false, nil
}

// fill reads more bytes, waiting for them until ctx ends.
func (t *wsConn) fill(ctx context.Context) error {
	if t.rb.bp != nil && t.rb.r == t.rb.w { // nothing unread: wait without a buffer
		t.rb.Release()
	}
	if err := t.setReadDeadline(ctx); err != nil {
		return err
	}
	fired := notFired
	if ctx.Done() != nil { // (the method value allocates: only when needed)
		fired = watchCtx(ctx, t.c.SetReadDeadline)
	}
	var n int
	var err error
	switch {
	case t.raw != nil:
		n, err = t.raw.Read(&t.rb)
	case t.rb.bp == nil:
		// No raw socket (TLS): wait in a read into a small stack buffer,
		// not the large pooled one, which is taken when bytes arrive.
		var first [512]byte
		n, err = t.c.Read(first[:])
		if n > 0 {
			copy(t.rb.Get(), first[:n])
		}
	default:
		n, err = t.c.Read(t.rb.Get())
	}
	if fired() {
		t.rdl = aLongTimeAgo // the next call sets the deadline again
		if cerr := ctx.Err(); cerr != nil && n == 0 {
			return cerr
		}
	}
	return t.took(n, err)
}

// took accounts for a read of n bytes into the read buffer that ended with
// err: an error that came with bytes is reported by the next read; without
// bytes the buffer goes back to its pool.
func (t *wsConn) took(n int, err error) error {
	t.rb.w += n
	if err == nil || n > 0 {
		return nil
	}
	t.rb.Release()
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF // a WebSocket ends with a close frame
	}
	return err
}

// peerClosed answers the peer's close frame and returns the error that ends
// the transport.
func (t *wsConn) peerClosed(payload []byte) error {
	code := uint16(0)
	reason := ""
	if len(payload) >= 2 {
		code = binary.BigEndian.Uint16(payload)
		reason = string(payload[2:])
	}
	t.wmu.Lock()
	if !t.closeSent {
		t.closeSent = true
		body := payload[:min(len(payload), 2)]
		t.writeControlLocked(wsOpClose, body) //nolint:errcheck // the peer is leaving anyway
	}
	t.wmu.Unlock()
	if reason != "" {
		return fmt.Errorf("resume: WebSocket closed by the peer (%d): %s", code, reason)
	}
	return fmt.Errorf("resume: WebSocket closed by the peer (%d): %w", code, io.EOF)
}

// fail sends a close frame for a framing violation, closes the connection
// and returns the error describing it.
func (t *wsConn) fail(code uint16, reason string) error {
	t.closeWith(code, reason)
	return fmt.Errorf("resume: WebSocket: %s", reason)
}

// WriteMessage writes one binary message.
func (t *wsConn) WriteMessage(ctx context.Context, p []byte) error {
	if len(p) > maxMessageLen {
		return errors.New("resume: message too long")
	}
	bp := msgPool.Get().(*[]byte)
	defer msgPool.Put(bp)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	var key [4]byte
	b := t.appendHeader((*bp)[:0], wsOpBinary, len(p), &key)
	b = append(b, p...)
	t.maskPayload(b[len(b)-len(p):], key)
	if cap(b) > cap(*bp) {
		*bp = b[:0]
	}
	return t.writeLocked(ctx, b)
}

// beginMessage appends the header of an n-byte binary message; the message
// follows, and endMessage masks it. Only a link's flusher calls these (one
// at a time per transport), so the key in fmask is its own.
func (t *wsConn) beginMessage(dst []byte, n int) []byte {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.appendHeader(dst, wsOpBinary, n, &t.fmask)
}

func (t *wsConn) endMessage(msg []byte) { t.maskPayload(msg, t.fmask) }

func (t *wsConn) maskPayload(p []byte, key [4]byte) {
	if t.client {
		ws.Cipher(p, key, 0)
	}
}

// appendHeader appends a final frame's header; on the client it draws a
// mask key into key. The caller holds wmu (the key source is shared).
func (t *wsConn) appendHeader(dst []byte, op byte, n int, key *[4]byte) []byte {
	b1 := byte(0)
	if t.client {
		b1 = 0x80
	}
	switch {
	case n < 126:
		dst = append(dst, 0x80|op, b1|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, b1|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if t.client {
		binary.LittleEndian.PutUint32(key[:], uint32(t.rng.Uint64()))
		dst = append(dst, key[:]...)
	}
	return dst
}

// writeBatch writes framed messages (from beginMessage/endMessage) with one
// write.
func (t *wsConn) writeBatch(ctx context.Context, b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeLocked(ctx, b)
}

func (t *wsConn) writeLocked(ctx context.Context, b []byte) error {
	if t.closeSent {
		return net.ErrClosed
	}
	dl, _ := ctx.Deadline()
	if !dl.Equal(t.wdl) {
		if err := t.c.SetWriteDeadline(dl); err != nil {
			return err
		}
		t.wdl = dl
	}
	fired := notFired
	if ctx.Done() != nil {
		fired = watchCtx(ctx, t.c.SetWriteDeadline)
	}
	corked := t.cork != nil && len(b) > wsMaxHeader+wsMaxControl
	if corked {
		t.cork.Cork()
	}
	_, err := t.c.Write(b)
	if corked {
		if uerr := t.cork.Uncork(); err == nil {
			err = uerr
		}
	}
	if fired() {
		t.wdl = aLongTimeAgo
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
	}
	return err
}

// writeControl writes one control frame.
func (t *wsConn) writeControl(op byte, payload []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closeSent {
		return nil
	}
	return t.writeControlLocked(op, payload)
}

// writeControlLocked writes a control frame within wsWriteTimeout.
func (t *wsConn) writeControlLocked(op byte, payload []byte) error {
	payload = payload[:min(len(payload), wsMaxControl)]
	var key [4]byte
	var frame [wsMaxHeader + wsMaxControl]byte
	b := t.appendHeader(frame[:0], op, len(payload), &key)
	b = append(b, payload...)
	t.maskPayload(b[len(b)-len(payload):], key)
	t.wdl = time.Now().Add(wsWriteTimeout) // the next data write sets its own
	t.c.SetWriteDeadline(t.wdl)            //nolint:errcheck // a closed conn fails the write
	_, err := t.c.Write(b)
	return err
}

// Close closes the connection. Transport-level codes (a dead or superseded
// transport) close at once; session codes first send a close frame with the
// code, so that a browser's close event carries it.
func (t *wsConn) Close(code CloseCode, reason string) error {
	switch code {
	case CloseSuperseded, CloseTransportDead, CloseInternalError, 0:
		return t.closeNow()
	}
	t.closeWith(uint16(code), truncReason(reason))
	return nil
}

// closeWith sends a close frame (bounded by wsWriteTimeout) and closes. A
// write in progress (a stalled flusher) means the frame could not go out in
// order: the connection is closed without it.
func (t *wsConn) closeWith(code uint16, reason string) {
	if !t.wmu.TryLock() {
		t.closeNow() //nolint:errcheck
		return
	}
	if !t.closeSent {
		t.closeSent = true
		var body [2 + wsMaxControl]byte
		binary.BigEndian.PutUint16(body[:], code)
		n := 2 + copy(body[2:], reason)
		t.writeControlLocked(wsOpClose, body[:n]) //nolint:errcheck // best effort
	}
	t.wmu.Unlock()
	t.closeNow() //nolint:errcheck
}

func (t *wsConn) closeNow() error {
	t.closeOnce.Do(func() {
		// A parked reader is not woken by the close (the socket just leaves
		// the epoll set): hand it the end here.
		t.pmu.Lock()
		t.closing = true
		t.pmu.Unlock()
		if t.raw != nil {
			if fn := t.raw.Cancel(); fn != nil {
				go fn()
			}
		}
		t.closeErr = t.c.Close()
	})
	return t.closeErr
}
