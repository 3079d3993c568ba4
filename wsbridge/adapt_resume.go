package wsbridge

import (
	"context"
	"net"

	"github.com/dualgate/dualgate/resume"
)

// resumeSession adapts a *resume.Conn: messages keep their boundaries and
// type, and close codes reach the client.
type resumeSession struct {
	*resume.Conn
}

// ResumeSession returns c as a Session that keeps message boundaries and
// close codes. Serve does this itself for every *resume.Conn it accepts.
func ResumeSession(c *resume.Conn) Session { return resumeSession{c} }

func adaptResume(c net.Conn) Session {
	if rc, ok := c.(*resume.Conn); ok {
		return resumeSession{rc}
	}
	return nil
}

func (s resumeSession) ReadMessage(ctx context.Context) (MessageType, []byte, error) {
	typ, p, err := s.Conn.ReadMessage(ctx)
	return MessageType(typ), p, err
}

// AppendMessage reads the next message into dst (see resume.Conn.AppendMessage).
func (s resumeSession) AppendMessage(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	typ, p, err := s.Conn.AppendMessage(ctx, dst)
	return MessageType(typ), p, err
}

func (s resumeSession) WriteMessage(ctx context.Context, typ MessageType, p []byte) error {
	return s.Conn.WriteMessage(ctx, resume.MessageType(typ), p)
}

func (s resumeSession) CloseWithError(code CloseCode, reason string) error {
	return s.Conn.CloseWithError(resume.CloseCode(code), reason)
}

// StartClose closes the session without waiting for the close exchange
// (see resume.Conn.StartClose): a drain holds no goroutine per session.
func (s resumeSession) StartClose(code CloseCode, reason string) error {
	return s.Conn.StartClose(resume.CloseCode(code), reason)
}

func (s resumeSession) Info() Info {
	ti := s.Conn.Info()
	return Info{Route: ti.Route, RemoteAddr: ti.RemoteAddr, Secure: ti.Secure}
}
