package resume

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
	"unicode/utf8"
)

// MessageType is the type of an application message, as in WebSocket.
type MessageType int

// Message types (the same values as github.com/coder/websocket).
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// Conn is one side of a resumable session. It implements net.Conn: Write
// sends one binary message, Read returns the received bytes ignoring message
// boundaries. Deadlines make calls fail with os.ErrDeadlineExceeded and
// never affect the transports. ReadMessage and WriteMessage keep message
// boundaries. A Conn is safe for concurrent use; the zero value is not usable.
type Conn struct {
	s      *session
	local  net.Addr
	remote net.Addr
}

type addr string

func (a addr) Network() string { return "dualgate" }
func (a addr) String() string  { return string(a) }

// Read reads received bytes. After the peer closed normally and every byte
// was read it returns io.EOF; after another close, a *CloseError.
func (c *Conn) Read(p []byte) (int, error) { return c.s.read(context.Background(), p) }

// ErrWouldBlock is returned by TryRead when no byte is there to read.
var ErrWouldBlock = errWouldBlock

// TryRead is Read without waiting: it returns ErrWouldBlock when Read would
// block. With NotifyReadable it lets a bridge serve an idle session without
// a goroutine waiting in Read.
func (c *Conn) TryRead(p []byte) (int, error) { return c.s.tryRead(p) }

// TryWriteTo writes the bytes received so far to w without copying them
// first (with writev when w is a *net.TCPConn or *net.UnixConn) and
// consumes what w took, so that a bridge to a byte-stream upstream saves a
// copy per byte. Like TryRead it returns ErrWouldBlock when nothing has
// arrived and the error Read would return once the stream has ended; when
// w fails, the error is a *WriteError and n says what w took. It may block
// while w does. Use it instead of Read and TryRead, not alongside them.
func (c *Conn) TryWriteTo(w io.Writer) (n int64, err error) { return c.s.tryWriteTo(w) }

// WriteError is the error of TryWriteTo when its writer failed.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "resume: TryWriteTo: writing: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// TryAppendMessage is AppendMessage without waiting: it returns
// ErrWouldBlock when no whole message is there yet (a part already received
// is kept for the next call).
func (c *Conn) TryAppendMessage(dst []byte) (MessageType, []byte, error) {
	return c.s.readMessageWait(context.Background(), dst, false)
}

// NotifyReadable runs f on a new goroutine, once, when Read may not block:
// at once if bytes or the end of the session are there, else when they
// arrive. A later call replaces an f that has not run yet.
func (c *Conn) NotifyReadable(f func()) { c.s.notifyReadable(f) }

// Write sends p as one binary message; it blocks while the peer's window
// is full.
func (c *Conn) Write(p []byte) (int, error) { return c.s.write(context.Background(), p, false) }

// ReadMessage returns the next whole message. A message larger than the
// maximum message size ends the session with CloseTooBig. When ctx or the
// read deadline ends the call in the middle of a message, the part already
// taken is kept and the next ReadMessage continues it. Do not mix Read and
// ReadMessage on one Conn.
func (c *Conn) ReadMessage(ctx context.Context) (MessageType, []byte, error) {
	return c.s.readMessage(ctx, nil)
}

// AppendMessage is ReadMessage appending the message to dst, so that a
// caller (a bridge) can reuse one buffer: msg = dst + the message.
func (c *Conn) AppendMessage(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	return c.s.readMessage(ctx, dst)
}

// WriteMessage sends one message. Text messages must be valid UTF-8; empty
// messages are not sent (docs/protocol.md §5.3).
func (c *Conn) WriteMessage(ctx context.Context, typ MessageType, p []byte) error {
	switch typ {
	case MessageBinary:
	case MessageText:
		if !utf8.Valid(p) {
			return errors.New("resume: text message is not valid UTF-8")
		}
	default:
		return errors.New("resume: unknown message type")
	}
	_, err := c.s.write(ctx, p, typ == MessageText)
	return err
}

// Close closes the session normally (code 1000): it sends CLOSE after all
// written data and waits, up to the close timeout, for the peer's answer.
func (c *Conn) Close() error { return c.CloseWithError(CloseNormal, "") }

// CloseWithError closes the session with a protocol close code and reason
// (at most 123 bytes are sent). It returns net.ErrClosed if the Conn was
// already closed.
func (c *Conn) CloseWithError(code CloseCode, reason string) error {
	s := c.s
	done, err := s.beginClose(code, reason)
	if err != nil {
		return err
	}
	t := time.NewTimer(s.cfg.closeTimeout)
	select {
	case <-done:
	case <-t.C:
		s.closeTimedOut(code, reason)
	}
	t.Stop()
	if s.cl != nil {
		s.cl.stop()
	}
	return nil
}

// StartClose is CloseWithError without the wait: it sends the CLOSE and
// returns; the session ends when the peer answers or at the close timeout
// (Done is closed then). A server closing many sessions at once (a drain)
// then holds a timer for each instead of a waiting goroutine. On a client's
// Conn it runs CloseWithError in a goroutine of its own.
func (c *Conn) StartClose(code CloseCode, reason string) error {
	s := c.s
	if s.cl != nil {
		s.mu.Lock()
		closed := s.appClosed
		s.mu.Unlock()
		if closed {
			return net.ErrClosed
		}
		go c.CloseWithError(code, reason) //nolint:errcheck // reported by Done and Err
		return nil
	}
	if _, err := s.beginClose(code, reason); err != nil {
		return err
	}
	s.mu.Lock()
	if s.err == nil {
		s.closeTimer = time.AfterFunc(s.cfg.closeTimeout, func() { s.closeTimedOut(code, reason) })
	}
	s.mu.Unlock()
	return nil
}

// LocalAddr returns a description of the local end.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address: the client's address on the server
// (of its first transport), the dialled URL on the client.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.s.readDL.set(t)
	c.s.writeDL.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read and ReadMessage.
func (c *Conn) SetReadDeadline(t time.Time) error { c.s.readDL.set(t); return nil }

// SetWriteDeadline sets the deadline of Write and WriteMessage.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.s.writeDL.set(t); return nil }

// Info returns the TransportInfo of the session's first transport.
func (c *Conn) Info() TransportInfo { return c.s.info }

// SessionID returns the session ID as unpadded base64url.
func (c *Conn) SessionID() string { return c.s.idString() }

// State returns the current state of the session.
func (c *Conn) State() State {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.state
}

// Done returns a channel closed when the session has ended.
func (c *Conn) Done() <-chan struct{} { return c.s.doneChan() }

// Err returns why the session ended, or nil while it lives.
func (c *Conn) Err() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.err
}
