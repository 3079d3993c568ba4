package wsbridge

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/rawio"
)

// endpoint is one side of a bridge, seen as a source and sink of messages.
// For byte streams a "message" is whatever one Read returned.
type endpoint interface {
	// read returns the next message. It may use (lb.get) and grow
	// (lb.grown) the loop's buffer as storage, and give it back (lb.release)
	// while it waits; the returned bytes are valid until the next call. It
	// may return data together with an error.
	read(ctx context.Context, lb *loopBuf) (MessageType, []byte, error)
	// write sends one message; p is not retained.
	write(ctx context.Context, typ MessageType, p []byte) error
	// closeWrite ends the output cleanly (TCP CloseWrite, WebSocket close
	// frame, end of the echo stream).
	closeWrite() error
	// close releases the endpoint and unblocks its pending calls.
	close() error
}

// messageAppender is implemented by message sessions that can read a
// message into a caller's buffer (resume sessions), which spares the bridge
// an allocation per message.
type messageAppender interface {
	AppendMessage(ctx context.Context, dst []byte) (MessageType, []byte, error)
}

// sessionEnd adapts a Session.
type sessionEnd struct {
	s  Session
	ms MessageSession  // nil for byte-stream sessions
	ma messageAppender // nil unless ms can append
	ec ErrorCloser     // nil if the session cannot carry a close code
	// bytes makes read ignore message boundaries (Read into the loop's
	// buffer): set when the upstream is a byte stream, before the loops run.
	bytes bool

	// Read's storage (only the session-to-upstream loop reads): msgBuf is
	// AppendMessage's buffer, grown to the largest message so far; in byte
	// mode small serves until a Read fills it, the loop's pooled buffer from
	// then on. So a session that stays quiet pins no large buffer.
	msgBuf []byte
	small  []byte
	big    bool
}

// smallReadSize is the size of a session's first read buffer in byte mode.
const smallReadSize = 1024

func newSessionEnd(s Session) *sessionEnd {
	e := &sessionEnd{s: s}
	e.ms, _ = s.(MessageSession)
	if e.ms != nil {
		e.ma, _ = s.(messageAppender)
	}
	e.ec, _ = s.(ErrorCloser)
	return e
}

func (e *sessionEnd) read(ctx context.Context, lb *loopBuf) (MessageType, []byte, error) {
	if e.ms != nil && !e.bytes {
		if e.ma != nil {
			typ, p, err := e.ma.AppendMessage(ctx, e.msgBuf[:0])
			if cap(p) > cap(e.msgBuf) {
				e.msgBuf = p[:0]
			}
			return typ, p, err
		}
		return e.ms.ReadMessage(ctx)
	}
	if !e.big {
		if e.small == nil {
			e.small = make([]byte, smallReadSize)
		}
		n, err := e.s.Read(e.small)
		if n == len(e.small) { // data is flowing: use the large buffer
			e.big = true
		}
		return MessageBinary, e.small[:n], err
	}
	b := lb.get()
	n, err := e.s.Read(b)
	return MessageBinary, b[:n], err
}

func (e *sessionEnd) write(ctx context.Context, typ MessageType, p []byte) error {
	if e.ms != nil {
		return e.ms.WriteMessage(ctx, typ, p)
	}
	_, err := e.s.Write(p)
	return err
}

func (e *sessionEnd) closeWrite() error { return e.s.Close() }
func (e *sessionEnd) close() error      { return e.s.Close() }

// closeStarter is a session that can begin its close without waiting for
// the peer (resume.Conn.StartClose).
type closeStarter interface {
	StartClose(code CloseCode, reason string) error
}

// goAway tells the session's client to go elsewhere (1001), without
// waiting for the close exchange when the session allows it.
func (e *sessionEnd) goAway(reason string) error {
	if cs, ok := e.s.(closeStarter); ok {
		return cs.StartClose(CloseGoingAway, truncReason(reason))
	}
	return e.closeWithError(CloseGoingAway, reason)
}

// closeWithError closes the session with a code and reason when it can carry
// them, and plainly otherwise.
func (e *sessionEnd) closeWithError(code CloseCode, reason string) error {
	if e.ec != nil {
		return e.ec.CloseWithError(code, truncReason(reason))
	}
	return e.s.Close()
}

// maxReasonLen is the longest close reason of the protocol (docs/protocol.md §8).
const maxReasonLen = 123

func truncReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	s = s[:maxReasonLen]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 { // drop a cut UTF-8 sequence
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

// streamEnd is a tcp or unix upstream.
type streamEnd struct {
	c  net.Conn
	rr *rawio.Reader // reads without a buffer while idle; nil if c has no raw connection

	pmu     sync.Mutex // park against closeConn
	closing bool       // guarded by pmu
}

func newStreamEnd(c net.Conn) *streamEnd { return &streamEnd{c: c, rr: rawio.New(c)} }

func (e *streamEnd) read(_ context.Context, lb *loopBuf) (MessageType, []byte, error) {
	if e.rr != nil {
		n, err := e.rr.Read(lb)
		if n == 0 {
			return MessageBinary, nil, err
		}
		return MessageBinary, lb.get()[:n], err
	}
	b := lb.get()
	n, err := e.c.Read(b)
	return MessageBinary, b[:n], err
}

func (e *streamEnd) write(_ context.Context, _ MessageType, p []byte) error {
	_, err := e.c.Write(p)
	return err
}

func (e *streamEnd) closeWrite() error {
	if cw, ok := e.c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return e.closeConn()
}

func (e *streamEnd) close() error { return e.closeConn() }

// closeConn closes the connection. A pump parked in rawio's epoll set is
// not woken by the close (the socket just leaves the set): it is handed the
// end here.
func (e *streamEnd) closeConn() error {
	e.pmu.Lock()
	e.closing = true
	e.pmu.Unlock()
	if e.rr != nil {
		if fn := e.rr.Cancel(); fn != nil {
			go fn()
		}
	}
	return e.c.Close()
}

// park runs fn once the socket has something to report, with no goroutine
// waiting (rawio.Reader.Park), or fails when the end is closed.
func (e *streamEnd) park(fn func()) error {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	if e.closing {
		return net.ErrClosed
	}
	return e.rr.Park(fn)
}

// wsEnd is a ws or wss upstream.
type wsEnd struct {
	c *websocket.Conn
}

func (e *wsEnd) read(ctx context.Context, lb *loopBuf) (MessageType, []byte, error) {
	typ, r, err := e.c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	b := lb.get()[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow; bounded by the connection's read limit
			lb.grown(b)
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			if typ == websocket.MessageText && !utf8.Valid(b) {
				return 0, nil, errInvalidText
			}
			return MessageType(typ), b, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

func (e *wsEnd) write(ctx context.Context, typ MessageType, p []byte) error {
	return e.c.Write(ctx, websocket.MessageType(typ), p)
}

func (e *wsEnd) closeWrite() error { return e.c.Close(websocket.StatusNormalClosure, "") }
func (e *wsEnd) close() error      { return e.c.CloseNow() }

// errInvalidText is a text message from a WebSocket upstream that is not
// UTF-8, which the protocol cannot carry as text.
var errInvalidText = errors.New("wsbridge: upstream sent a text message that is not valid UTF-8")
