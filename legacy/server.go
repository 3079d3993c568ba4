package legacy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Server serves the legacy protocol on connections handed to ServeConn and
// yields each new session from Accept. Create it with NewServer; the zero
// value is unusable. It is safe for concurrent use.
type Server struct {
	opts ServerOptions
	m    *metrics
	rand io.Reader // crypto/rand.Reader; tests substitute a fixed stream

	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	acceptCh chan *Conn
	stopping chan struct{} // closed by Shutdown or Close
	stopOnce sync.Once

	mu       sync.Mutex
	closed   bool
	sessions map[uint64]*Conn
	perIP    map[netip.Addr]int
	serving  sync.WaitGroup // ServeConn calls in progress
}

// NewServer returns a server configured by opts (nil means defaults). It
// logs a warning that the protocol's cryptography is weak and registers
// the dualgate_legacy_* metrics with opts.Registerer.
func NewServer(opts *ServerOptions) (*Server, error) {
	o := opts.cloneWithDefaults()
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     o,
		m:        m,
		rand:     rand.Reader,
		ctx:      ctx,
		cancel:   cancel,
		acceptCh: make(chan *Conn),
		stopping: make(chan struct{}),
		sessions: make(map[uint64]*Conn),
		perIP:    make(map[netip.Addr]int),
	}
	o.Logger.Warn("legacy: snet protocol enabled; it uses weak cryptography (64-bit Diffie-Hellman, RC4, MD5) and offers no integrity; serve it over TLS or wss and migrate clients",
		"encrypt", o.Encrypt, "resend_buffer", o.ResendBuffer, "reconnect_wait", o.ReconnectWait)
	return s, nil
}

// Accept waits for the next new session. Reconnects never appear here:
// they continue an accepted Conn. After Shutdown or Close it returns
// ErrServerClosed.
func (s *Server) Accept() (net.Conn, error) {
	select {
	case c := <-s.acceptCh:
		return c, nil
	case <-s.stopping:
		return nil, ErrServerClosed
	}
}

// ServeConn runs the legacy protocol on conn, whose first byte (0x00 or
// 0xFF, replayed by the sniffer) selects a new session or a reconnect. It
// returns when the connection is done: refused, replaced by a newer
// transport, failed, or its session ended; conn is closed by then. A raw
// TCP conn, a TLS conn and websocket.NetConn(..., MessageBinary) all work;
// info describes it.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn, info Info) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return ErrServerClosed
	}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	c, t, fresh, err := s.handshake(ctx, conn, info)
	if err != nil {
		_ = conn.Close()
		return err
	}
	if fresh {
		select {
		case s.acceptCh <- c:
		case <-s.stopping:
			c.endWith(ErrSessionLost, "server shutting down")
		case <-ctx.Done():
			c.endWith(ErrSessionLost, "context done")
		}
	}
	c.runTransport(ctx, t, 0)
	return nil
}

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
		c.detach(t, err)
	}
	if err != nil {
		return nil, nil, false, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, t, fresh, nil
}

// refused logs and counts a refused handshake.
func (s *Server) refused(typ, result string, info Info, err error) {
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
	t := newTransport(conn, s.opts.ResendBuffer)
	c.mu.Lock()
	if c.ended || !c.ring.holds(req.readCount) || c.readCount > req.writeCount {
		ended := c.ended
		c.mu.Unlock()
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

// newID draws a random, unused, non-zero session ID.
func (s *Server) newID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return 0, fmt.Errorf("legacy: session id: %w", err)
		}
		id := binary.LittleEndian.Uint64(b[:])
		s.mu.Lock()
		_, taken := s.sessions[id]
		s.mu.Unlock()
		if id != 0 && !taken {
			return id, nil
		}
	}
}

// checkLimits refuses a new session beyond MaxSessions or MaxSessionsPerIP
// or while shutting down.
func (s *Server) checkLimits(info Info) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLimitsLocked(info)
}

func (s *Server) checkLimitsLocked(info Info) error {
	select {
	case <-s.stopping:
		return ErrServerClosed
	default:
	}
	if len(s.sessions) >= s.opts.MaxSessions {
		return fmt.Errorf("legacy: session limit %d reached", s.opts.MaxSessions)
	}
	if ip := info.RemoteAddr.Addr().Unmap(); ip.IsValid() && s.perIP[ip] >= s.opts.MaxSessionsPerIP {
		return fmt.Errorf("legacy: per-IP session limit %d reached for %v", s.opts.MaxSessionsPerIP, ip)
	}
	return nil
}

// register adds a new session, re-checking the limits.
func (s *Server) register(c *Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLimitsLocked(c.info); err != nil {
		return err
	}
	if _, taken := s.sessions[c.id]; taken {
		return fmt.Errorf("legacy: session id collision")
	}
	s.sessions[c.id] = c
	if ip := c.info.RemoteAddr.Addr().Unmap(); ip.IsValid() {
		s.perIP[ip]++
	}
	return nil
}

// forget removes an ended session.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[c.id] != c {
		return
	}
	delete(s.sessions, c.id)
	if ip := c.info.RemoteAddr.Addr().Unmap(); ip.IsValid() {
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
	}
	s.m.sessionClosed()
}

// Sessions returns the number of live sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops accepting new sessions (reconnects of live ones are still
// served) and waits until every session has ended or ctx is done; then it
// closes the server. It returns ctx.Err() if the sessions outlived ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for s.Sessions() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-tick.C:
			continue
		}
		break
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close ends every session (Read and Write return ErrSessionLost), aborts
// handshakes in progress and waits for the ServeConn calls to return.
// Calling it again is harmless.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.mu.Lock()
	s.closed = true
	sessions := make([]*Conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		sessions = append(sessions, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, c := range sessions {
		c.endWith(ErrSessionLost, "server closed")
	}
	s.serving.Wait()
	return nil
}

// endWith ends the session with err for both Read and Write.
func (c *Conn) endWith(err error, why string) {
	c.mu.Lock()
	ended := c.endLocked(err, err, why)
	c.mu.Unlock()
	if ended {
		c.afterEnd()
	}
}
