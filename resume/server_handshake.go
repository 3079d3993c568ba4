package resume

// The server side of handshakes: new sessions and resumes (docs/protocol.md §4).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// refuse sends a refusal and closes t; it returns the refusal as error.
func (srv *Server) refuse(ctx context.Context, t Transport, code CloseCode, reason string) error {
	srv.m.refuse(code)
	srv.opts.Logger.Debug("resume: refused", "code", uint16(code), "reason", reason)
	t.WriteMessage(ctx, appendRefuse(nil, code, reason)) //nolint:errcheck // best effort
	t.Close(code, reason)                                //nolint:errcheck
	return &CloseError{Code: code, Reason: reason}
}

// readConfirm reads the client's first transport frame.
func readConfirm(ctx context.Context, t Transport, res handshakeResult) (uint64, error) {
	msg, err := t.ReadMessage(ctx)
	if err != nil {
		return 0, fmt.Errorf("resume: read CONFIRM: %w", err)
	}
	pt, err := res.recv.Decrypt(nil, nil, msg)
	if err != nil {
		return 0, errTampered
	}
	f, err := parseFrame(pt)
	if err != nil || f.typ != frameConfirm {
		return 0, protoErr("first frame is not CONFIRM")
	}
	return f.num, nil
}

func (srv *Server) newSession(hctx context.Context, t Transport, hello clientHello, info TransportInfo) (*session, *link, error) {
	ip := info.RemoteAddr.Addr().Unmap()
	srv.mu.Lock()
	switch {
	case srv.closed || srv.draining:
		srv.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseGoingAway, "shutting down")
	case len(srv.sessions)+srv.pending >= srv.opts.MaxSessions:
		srv.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseTooManySessions, "too many sessions")
	case ip.IsValid() && srv.perIP[ip] >= srv.opts.MaxSessionsPerIP:
		srv.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseTooManyFromAddress, "too many sessions from this address")
	}
	srv.pending++
	if ip.IsValid() {
		srv.perIP[ip]++
	}
	srv.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			srv.mu.Lock()
			srv.pending--
			srv.releaseIPLocked(ip)
			srv.mu.Unlock()
		}
	}()
	sh, hp, err := readClientHello(hello, nil, &srv.opts.Key.kp, srv.opts.Rand)
	if err != nil {
		if errors.Is(err, errNoiseDecrypt) && hello.pattern == PatternNK {
			return nil, nil, srv.refuse(hctx, t, CloseServerKeyMismatch, "client pinned another key")
		}
		return nil, nil, srv.refuse(hctx, t, CloseProtocolError, err.Error())
	}
	var id [sessionIDLen]byte
	if _, err := io.ReadFull(srv.opts.Rand, id[:]); err != nil {
		return nil, nil, srv.refuse(hctx, t, CloseInternalError, "randomness")
	}
	msg2, res, err := sh.writeServerHello(srv.serverPayload(&hello, &info, id, 0))
	if err != nil {
		return nil, nil, srv.refuse(hctx, t, CloseInternalError, "handshake")
	}
	secret, err := deriveResumeSecret(res.hash)
	if err != nil {
		return nil, nil, srv.refuse(hctx, t, CloseInternalError, "handshake")
	}
	// The session exists from the server hello on, so that a client whose
	// CONFIRM was lost with the transport can resume it; it is yielded by
	// Accept only once confirmed (docs/protocol.md §4.4).
	s := newSession(srv.cfg, false)
	s.id, s.secret, s.info, s.srv, s.peerWindow = id, secret, info, srv, hp.window
	s.conn = &Conn{s: s, local: addr("dualgate-server"), remote: addr(info.RemoteAddr.String())}
	srv.mu.Lock()
	if srv.closed || srv.draining {
		srv.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseGoingAway, "shutting down")
	}
	ok = true
	srv.pending--
	srv.sessions[id] = s
	srv.mu.Unlock()
	s.mu.Lock()
	s.state = StateDetached
	s.detachedAt = time.Now()
	srv.armTTLLocked(s)
	s.mu.Unlock()
	if err := t.WriteMessage(hctx, msg2); err != nil {
		t.Close(CloseInternalError, "") //nolint:errcheck
		return nil, nil, fmt.Errorf("resume: write server hello: %w", err)
	}
	delivered, err := readConfirm(hctx, t, res)
	if err == nil && delivered != 0 {
		err = protoErr("CONFIRM of a new session must be 0")
	}
	if err != nil {
		srv.closeHandshake(hctx, t, err)
		return nil, nil, err
	}
	l := newLink(nil, nil, s, t, res, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Close(CloseGoingAway, "session ended") //nolint:errcheck
		return nil, nil, net.ErrClosed
	}
	if s.link != nil {
		// A resume won the race against this CONFIRM.
		t.Close(CloseSuperseded, "") //nolint:errcheck
		return nil, nil, net.ErrClosed
	}
	s.attachLocked(l, 0, 0) //nolint:errcheck // 0 is always in range before anything was sent
	srv.confirmLocked(s)
	return s, l, nil
}

// confirmLocked yields a session to Accept once, when its first CONFIRM
// arrives. The caller holds s.mu.
func (srv *Server) confirmLocked(s *session) {
	if s.confirmed {
		return
	}
	s.confirmed = true
	srv.mu.Lock()
	srv.queue = append(srv.queue, s.conn)
	srv.wake.Signal()
	srv.mu.Unlock()
}

// closeHandshake ends a handshake that failed after the server hello.
func (srv *Server) closeHandshake(_ context.Context, t Transport, err error) {
	code := CloseStatus(err)
	if code == 0 {
		code = CloseHandshakeTimeout
	}
	srv.m.refuse(code)
	t.Close(code, "") //nolint:errcheck
}

func (srv *Server) resumeSession(hctx context.Context, t Transport, hello clientHello, info TransportInfo) (*session, *link, error) {
	srv.mu.Lock()
	s := srv.sessions[hello.sessionID]
	expired := srv.expired.has(hello.sessionID)
	srv.mu.Unlock()
	if s == nil {
		if expired {
			return nil, nil, srv.refuse(hctx, t, CloseSessionExpired, "session expired")
		}
		return nil, nil, srv.refuse(hctx, t, CloseUnknownSession, "unknown session")
	}
	sh, hp, err := readClientHello(hello, s.secret, &srv.opts.Key.kp, srv.opts.Rand)
	if err != nil {
		if errors.Is(err, errNoiseDecrypt) {
			return nil, nil, srv.refuse(hctx, t, CloseProofFailed, "resume proof failed")
		}
		return nil, nil, srv.refuse(hctx, t, CloseProtocolError, err.Error())
	}
	s.mu.Lock()
	switch {
	case s.err != nil:
		s.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseUnknownSession, "session ended")
	case hp.window != s.peerWindow:
		s.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseProtocolError, "window changed")
	case hp.counter <= s.maxCounter:
		s.mu.Unlock()
		return nil, nil, srv.refuse(hctx, t, CloseReplayedResume, "resume counter not fresh")
	}
	s.maxCounter = hp.counter
	delivered := s.rq.start
	s.mu.Unlock()
	msg2, res, err := sh.writeServerHello(srv.serverPayload(&hello, &info, s.id, delivered))
	if err != nil {
		return nil, nil, srv.refuse(hctx, t, CloseInternalError, "handshake")
	}
	if err := t.WriteMessage(hctx, msg2); err != nil {
		t.Close(CloseInternalError, "") //nolint:errcheck
		return nil, nil, fmt.Errorf("resume: write server hello: %w", err)
	}
	peerDelivered, err := readConfirm(hctx, t, res)
	if err != nil {
		srv.closeHandshake(hctx, t, err)
		return nil, nil, err
	}
	l := newLink(nil, nil, s, t, res, hp.counter)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		t.Close(CloseUnknownSession, "session ended") //nolint:errcheck
		return nil, nil, net.ErrClosed
	}
	if s.link != nil && s.link.counter > hp.counter {
		s.mu.Unlock()
		srv.m.refuse(CloseReplayedResume)
		t.Close(CloseReplayedResume, "superseded by a newer resume") //nolint:errcheck
		return nil, nil, &CloseError{Code: CloseReplayedResume}
	}
	prevSent := s.sent
	if err := s.attachLocked(l, peerDelivered, delivered); err != nil {
		s.failLocked(err, false)
		s.mu.Unlock()
		srv.m.refuse(CloseStatus(err))
		t.Close(CloseTooFarBehind, "too far behind") //nolint:errcheck
		return nil, nil, err
	}
	if srv.m != nil && prevSent > peerDelivered {
		srv.m.bytesReplayed.Add(float64(prevSent - peerDelivered))
	}
	srv.confirmLocked(s)
	s.mu.Unlock()
	return s, l, nil
}
