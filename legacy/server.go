package legacy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
// TCP conn, a TLS conn and a WebSocket wrapped with WebSocketConn all work;
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
