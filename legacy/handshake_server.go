package legacy

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// handshake runs a whole handshake under the handshake timeout and returns
// the session with its new, attached transport.
func (s *Server) handshake(ctx context.Context, conn net.Conn, info Info) (_ *Conn, _ *transport, fresh bool, _ error) {
	hctx, cancel := context.WithTimeout(ctx, s.opts.HandshakeTimeout)
	defer cancel()
	_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	cut := context.AfterFunc(hctx, func() { _ = conn.Close() })

	var typ [1]byte
	if err := readFull(conn, typ[:]); err != nil {
		cut()
		s.refused(handshakeUnknown, resultIOError, info, err)
		return nil, nil, false, fmt.Errorf("legacy: handshake: %w", err)
	}
	var (
		c   *Conn
		t   *transport
		err error
	)
	switch typ[0] {
	case TypeNewSession:
		fresh = true
		c, t, err = s.newSession(conn, info)
	case TypeReconnect:
		c, t, err = s.reconnect(conn, info)
	default:
		err = fmt.Errorf("%w: 0x%02x", errWrongType, typ[0])
		s.refused(handshakeUnknown, resultWrongType, info, err)
	}
	if !cut() && err == nil {
		// The deadline cut the conn just as the handshake finished.
		err = fmt.Errorf("legacy: handshake: %w", context.DeadlineExceeded)
		if fresh {
			c.endWith(ErrSessionLost, "handshake deadline") // never handed out
		} else {
			c.detach(t, err)
		}
	}
	if err != nil {
		return nil, nil, false, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, t, fresh, nil
}

// refused logs and counts a refused handshake.
func (s *Server) refused(typ, result string, info Info, err error) {
	if result == resultIOError && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)) {
		result = resultTimeout // the handshake deadline cut a slow or silent client
	}
	s.m.handshake(typ, result)
	s.opts.Logger.Info("legacy: handshake refused", "type", typ, "result", result,
		"remote", info.RemoteAddr, "route", info.Route, "err", err)
}

// newSession runs a new-session handshake after the 0x00 byte.
func (s *Server) newSession(conn net.Conn, info Info) (*Conn, *transport, error) {
	var req [newRequestLen]byte
	req[0] = TypeNewSession
	if err := readFull(conn, req[1:]); err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: new session: %w", err)
	}
	clientPub, err := parseNewRequest(req[:])
	if err != nil {
		s.refused(handshakeNew, resultBadKey, info, err)
		return nil, nil, err
	}
	if err := s.checkLimits(info); err != nil {
		s.refused(handshakeNew, resultLimit, info, err)
		return nil, nil, err
	}
	priv, pub, err := newKeyPair(s.rand)
	if err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, err
	}
	key := keyFromSecret(dhSecret(priv, clientPub))
	id, err := s.newID()
	if err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, err
	}
	c := newConn(id, key, s.opts.Encrypt, s.opts.ResendBuffer, s.opts.ReceiveBuffer, s.opts.LingerTimeout, s.opts.Logger)
	c.server, c.m, c.info = s, s.m, info

	resp := newResponse{serverPub: pub}
	binary.LittleEndian.PutUint64(resp.encID[:], id)
	c.writeCipher.XORKeyStream(resp.encID[:], resp.encID[:])
	if _, err := io.ReadFull(s.rand, resp.challenge[:]); err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: challenge: %w", err)
	}
	b := resp.marshal()
	if _, err := conn.Write(b[:]); err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: new session: %w", err)
	}
	var answer [proofLen]byte
	if err := readFull(conn, answer[:]); err != nil {
		s.refused(handshakeNew, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: new session: %w", err)
	}
	want := proof(resp.challenge[:], key)
	if subtle.ConstantTimeCompare(answer[:], want[:]) != 1 {
		err := errors.New("legacy: new session: wrong challenge answer")
		s.refused(handshakeNew, resultBadProof, info, err)
		return nil, nil, err
	}
	t := newTransport(conn, s.opts.ResendBuffer)
	if err := s.register(c); err != nil {
		s.refused(handshakeNew, resultLimit, info, err)
		return nil, nil, err
	}
	c.mu.Lock()
	c.attachLocked(t, 0, 0, info.RemoteAddr)
	c.mu.Unlock()
	s.m.handshake(handshakeNew, resultOK)
	s.m.sessionOpened()
	s.opts.Logger.Info("legacy: session opened", "id", id, "remote", info.RemoteAddr,
		"route", info.Route, "secure", info.Secure)
	return c, t, nil
}

// reconnect runs a reconnect handshake after the 0xFF byte. Refusals of
// the request get the 24 zero bytes; nothing about the session changes
// until the challenge is answered, so a replayed or forged request cannot
// disturb the live transport.
func (s *Server) reconnect(conn net.Conn, info Info) (*Conn, *transport, error) {
	var b [reconnectRequestLen]byte
	b[0] = TypeReconnect
	if err := readFull(conn, b[1:]); err != nil {
		s.refused(handshakeReconn, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	req, err := parseReconnectRequest(b[:])
	if err != nil { // unreachable: the shape is fixed
		s.refused(handshakeReconn, resultIOError, info, err)
		return nil, nil, err
	}
	refuse := func(result string, err error) (*Conn, *transport, error) {
		var zero [reconnectResponseLen]byte
		_, _ = conn.Write(zero[:])
		s.refused(handshakeReconn, result, info, err)
		return nil, nil, err
	}
	s.mu.Lock()
	c := s.sessions[req.id]
	s.mu.Unlock()
	if c == nil {
		return refuse(resultUnknownID, fmt.Errorf("legacy: reconnect: unknown session %d", req.id))
	}
	signed := req.signed()
	want := proof(signed[:], c.key)
	if subtle.ConstantTimeCompare(req.proof[:], want[:]) != 1 {
		return refuse(resultBadProof, fmt.Errorf("legacy: reconnect: wrong proof for session %d", req.id))
	}

	c.mu.Lock()
	switch {
	case c.ended:
		c.mu.Unlock()
		return refuse(resultUnknownID, fmt.Errorf("legacy: reconnect: session %d ended", req.id))
	case req.writeCount < c.hwWrite || req.readCount < c.hwRead:
		c.mu.Unlock()
		return refuse(resultReplay, fmt.Errorf("legacy: reconnect: session %d: counts %d/%d behind an accepted reconnect (%d/%d): replayed",
			req.id, req.writeCount, req.readCount, c.hwWrite, c.hwRead))
	case !countsConsistent(c.writeCount, c.readCount, req.writeCount, req.readCount, c.ring.holds):
		err := fmt.Errorf("legacy: reconnect: session %d: inconsistent counts: client %d/%d, server %d/%d",
			req.id, req.writeCount, req.readCount, c.writeCount, c.readCount)
		c.mu.Unlock()
		return refuse(resultBadCounts, err)
	}
	resp := reconnectResponse{writeCount: c.writeCount, readCount: c.readCount}
	attaches := c.attaches
	c.mu.Unlock()

	if _, err := io.ReadFull(s.rand, resp.challenge[:]); err != nil {
		return refuse(resultIOError, fmt.Errorf("legacy: challenge: %w", err))
	}
	rb := resp.marshal()
	if _, err := conn.Write(rb[:]); err != nil {
		s.refused(handshakeReconn, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	var answer [proofLen]byte
	if err := readFull(conn, answer[:]); err != nil {
		s.refused(handshakeReconn, resultIOError, info, err)
		return nil, nil, fmt.Errorf("legacy: reconnect: %w", err)
	}
	wantAnswer := proof(resp.challenge[:], c.key)
	if subtle.ConstantTimeCompare(answer[:], wantAnswer[:]) != 1 {
		err := fmt.Errorf("legacy: reconnect: session %d: wrong challenge answer", req.id)
		s.refused(handshakeReconn, resultBadProof, info, err)
		return nil, nil, err
	}

	// Take over. The session may have moved on while we talked: an older
	// transport may have delivered more (the reader skips it on resend) or
	// written more (still fine while the ring holds what the client lacks).
	// If a newer reconnect attached meanwhile, this handshake is stale: it
	// is refused on its own link and the session, served by the newer
	// transport, is left alone. Only when no transport attached since and
	// the ring no longer holds what the client lacks is the session lost.
	t := newTransport(conn, s.opts.ResendBuffer)
	c.mu.Lock()
	if c.ended || c.attaches != attaches || !c.ring.holds(req.readCount) || c.readCount > req.writeCount {
		ended, stale := c.ended, c.attaches != attaches
		c.mu.Unlock()
		if stale {
			err := fmt.Errorf("legacy: reconnect: session %d: a newer transport attached during the handshake", req.id)
			s.refused(handshakeReconn, resultStale, info, err)
			return nil, nil, err
		}
		err := fmt.Errorf("legacy: reconnect: session %d moved on during the handshake", req.id)
		s.refused(handshakeReconn, resultBadCounts, info, err)
		if !ended {
			c.endWith(ErrSessionLost, "resend buffer overrun during reconnect")
		}
		return nil, nil, err
	}
	c.hwWrite = max(c.hwWrite, req.writeCount)
	c.hwRead = max(c.hwRead, req.readCount)
	c.attachLocked(t, req.readCount, resp.readCount, info.RemoteAddr)
	c.mu.Unlock()
	s.m.handshake(handshakeReconn, resultOK)
	s.opts.Logger.Debug("legacy: session reconnected", "id", req.id, "remote", info.RemoteAddr,
		"resend", resp.writeCount-req.readCount, "expect", req.writeCount-resp.readCount)
	return c, t, nil
}
