package resume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Transport is one message-oriented carrier of a session: a WebSocket
// connection or a length-prefixed byte stream. ReadMessage is called by one
// goroutine at a time and its result is valid until the next call (the
// caller may modify it: the session decrypts in place);
// WriteMessage is called by one goroutine at a time; Close may be called at
// any time, concurrently with both, and unblocks them.
type Transport interface {
	ReadMessage(ctx context.Context) ([]byte, error)
	WriteMessage(ctx context.Context, p []byte) error
	Close(code CloseCode, reason string) error
}

// batchTransport is a Transport that writes several messages with one
// system call. The flusher, the only caller, frames each message with
// beginMessage (the header of an n-byte message), appends the n bytes,
// finishes it with endMessage (masking, for a WebSocket client), and writes
// the lot with writeBatch.
type batchTransport interface {
	Transport
	beginMessage(dst []byte, n int) []byte
	endMessage(msg []byte)
	writeBatch(ctx context.Context, b []byte) error
}

// pollTransport is a Transport that can wait for data without a buffer and
// read without waiting (a WebSocket on a plain socket), so that an idle
// transport costs no buffer, and no goroutine once it parks (parker).
type pollTransport interface {
	Transport
	canPoll() bool
	// tryReadMessage is ReadMessage without waiting: errWouldBlock when
	// nothing whole is there.
	tryReadMessage() ([]byte, error)
	// waitReadable parks until there may be more to read or ctx ends.
	waitReadable(ctx context.Context) error
}

// TransportInfo describes where a transport came from. For a session it is
// the info of its first transport.
type TransportInfo struct {
	Route      string         // the gateway route (URL path) the client asked for
	RemoteAddr netip.AddrPort // the client's address
	Secure     bool           // the carrier was TLS (wss:// or tls://)
	// TLSVersion is the version of the TLS connection this process
	// terminated itself (tls.VersionTLS13, …), 0 otherwise (also when a
	// proxy in front terminated TLS). Plain-in-TLS frames (docs/protocol.md
	// §5.7) need TLS 1.3 here.
	TLSVersion uint16
}

// WebSocketTransport returns the Transport of a WebSocket connection that
// negotiated the dualgate.v1 subprotocol. It raises the connection's read
// limit to the protocol's largest message.
func WebSocketTransport(c *websocket.Conn) Transport {
	c.SetReadLimit(maxMessageLen)
	return &wsTransport{c: c}
}

type wsTransport struct {
	c  *websocket.Conn
	rb *[]byte // the last message returned by ReadMessage
}

// ReadMessage reads one binary message into a pooled buffer, which goes
// back to the pool on the next call: a waiting reader holds none.
func (t *wsTransport) ReadMessage(ctx context.Context) ([]byte, error) {
	if t.rb != nil {
		msgPool.Put(t.rb)
		t.rb = nil
	}
	typ, r, err := t.c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		t.c.Close(websocket.StatusUnsupportedData, "text message") //nolint:errcheck // best effort
		return nil, protoErr("text WebSocket message")
	}
	t.rb = msgPool.Get().(*[]byte)
	b := (*t.rb)[:cap(*t.rb)]
	n := 0
	for {
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n == len(b) { // cannot happen with the read limit; never loop forever
			return nil, &CloseError{Code: CloseTooBig, Reason: "message too big"}
		}
	}
	if n == 0 {
		return nil, protoErr("empty WebSocket message")
	}
	return b[:n], nil
}

func (t *wsTransport) WriteMessage(ctx context.Context, p []byte) error {
	return t.c.Write(ctx, websocket.MessageBinary, p)
}

// Close closes the WebSocket with the code. Transport-level codes (a dead or
// superseded transport) close at once; session codes run the close handshake.
func (t *wsTransport) Close(code CloseCode, reason string) error {
	switch code {
	case CloseSuperseded, CloseTransportDead, CloseInternalError, 0:
		return t.c.CloseNow()
	}
	return t.c.Close(websocket.StatusCode(code), truncReason(reason))
}

// streamTransport is the length-prefixed byte-stream carrier. While it
// waits for a message it holds no buffer: buffers come from msgPool for the
// time a message is processed.
type streamTransport struct {
	c  net.Conn
	rb *[]byte // the last message returned by ReadMessage

	wmu sync.Mutex

	closeOnce sync.Once
}

var msgPool = sync.Pool{New: func() any { b := make([]byte, 0, 2+maxMessageLen); return &b }}

func newStreamTransport(c net.Conn) *streamTransport { return &streamTransport{c: c} }

// ctxDeadline makes a blocking call on c return when ctx ends: it sets
// ctx's deadline and watches ctx (watchCtx). stop reports true when ctx did
// not end the call.
func ctxDeadline(ctx context.Context, set func(time.Time) error) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		set(d) //nolint:errcheck // a closed conn fails the I/O anyway
	}
	fired := watchCtx(ctx, set)
	return func() bool { return !fired() }
}

// watchCtx makes a blocked call on a connection return when ctx ends, by
// setting a deadline in the past with set. The returned function, called
// when the call is over, reports whether ctx ended first; if it did, it
// returns only once set has run, so that the past deadline cannot land on
// a later call.
func watchCtx(ctx context.Context, set func(time.Time) error) (fired func() bool) {
	if ctx.Done() == nil {
		return notFired
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		set(aLongTimeAgo) //nolint:errcheck // a closed conn fails the I/O anyway
		close(done)
	})
	return func() bool {
		if stop() {
			return false
		}
		<-done
		return true
	}
}

func notFired() bool { return false }

func (t *streamTransport) ReadMessage(ctx context.Context) ([]byte, error) {
	if t.rb != nil {
		msgPool.Put(t.rb)
		t.rb = nil
	}
	stop := ctxDeadline(ctx, t.c.SetReadDeadline)
	b, err := readStreamMessage(t.c, func(n int) []byte {
		t.rb = msgPool.Get().(*[]byte)
		return (*t.rb)[:n]
	})
	if !stop() {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (t *streamTransport) WriteMessage(ctx context.Context, p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	stop := ctxDeadline(ctx, t.c.SetWriteDeadline)
	wb := msgPool.Get().(*[]byte)
	defer msgPool.Put(wb)
	out, err := appendStreamMessage((*wb)[:0], p)
	if err == nil {
		*wb = out
		_, err = t.c.Write(out)
	}
	if !stop() {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
	}
	return err
}

func (t *streamTransport) beginMessage(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint16(dst, uint16(n))
}

func (*streamTransport) endMessage([]byte) {}

func (t *streamTransport) writeBatch(ctx context.Context, b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	stop := ctxDeadline(ctx, t.c.SetWriteDeadline)
	_, err := t.c.Write(b)
	if !stop() {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
	}
	return err
}

func (t *streamTransport) Close(CloseCode, string) error {
	var err error
	t.closeOnce.Do(func() { err = t.c.Close() })
	return err
}

// readPreamble consumes and checks the byte-stream preamble.
func readPreamble(r io.Reader) error {
	var p [len(StreamPreamble)]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return fmt.Errorf("resume: read preamble: %w", err)
	}
	if string(p[:]) != StreamPreamble {
		return errors.New("resume: not a dualgate stream (bad preamble)")
	}
	return nil
}
