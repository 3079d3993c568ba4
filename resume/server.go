package resume

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerOptions configure a Server. A nil *ServerOptions is invalid (Key is
// required); zero fields take the documented defaults. The struct is copied
// by NewServer and not modified.
type ServerOptions struct {
	// Key is the gateway's static key (required), used by pinned (NK) clients.
	Key *Key
	// Window is the receive window per session in bytes (default 256 KiB,
	// 16 KiB – 16 MiB).
	Window int
	// PingInterval (default 10 s) and DeadTimeout (default 30 s): liveness.
	PingInterval, DeadTimeout time.Duration
	// HandshakeTimeout bounds a handshake up to CONFIRM (default 10 s).
	HandshakeTimeout time.Duration
	// DetachedTTL is how long a session without a transport is kept (default 2 min).
	DetachedTTL time.Duration
	// CloseTimeout bounds the close exchange of Conn.Close (default 5 s).
	CloseTimeout time.Duration
	// MaxSessions (default 100,000) and MaxSessionsPerIP (default 256)
	// bound the session table, handshakes in progress included.
	MaxSessions, MaxSessionsPerIP int
	// MaxMessageSize bounds a message assembled by Conn.ReadMessage (default 16 MiB).
	MaxMessageSize int
	// AlwaysSeal refuses plain-in-TLS frames (docs/protocol.md §5.7): every
	// frame is then sealed with the session's AEAD even inside TLS. By
	// default an unpinned (NN) client inside a TLS 1.3 connection this
	// process terminated (TransportInfo.TLSVersion) may rely on TLS alone
	// for its frames, so that each byte is encrypted once, not twice.
	AlwaysSeal bool
	// Logger receives debug and error logs (nil: discarded).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: none).
	Registerer prometheus.Registerer
	// Rand is the source of randomness (nil: crypto/rand); tests inject it.
	Rand io.Reader
}

func (o *ServerOptions) cloneWithDefaults() (ServerOptions, error) {
	if o == nil || o.Key == nil {
		return ServerOptions{}, errors.New("resume: ServerOptions.Key is required")
	}
	c := *o
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defi(&c.Window, DefaultWindow)
	if c.Window < MinWindow || c.Window > MaxWindow {
		return c, fmt.Errorf("resume: window %d outside %d..%d", c.Window, MinWindow, MaxWindow)
	}
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.DeadTimeout, DefaultDeadTimeout)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.DetachedTTL, DefaultDetachedTTL)
	def(&c.CloseTimeout, DefaultCloseTimeout)
	defi(&c.MaxSessions, DefaultMaxSessions)
	defi(&c.MaxSessionsPerIP, DefaultMaxSessionsPerIP)
	defi(&c.MaxMessageSize, DefaultMaxMessageSize)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c, nil
}

// Server is the gateway side: it takes transports, runs handshakes, keeps
// the session table and yields new sessions from Accept. Create it with
// NewServer; the zero value is not usable. A Server is safe for concurrent use.
type Server struct {
	opts ServerOptions
	cfg  *sessionConfig
	m    *metrics

	ctx    context.Context // canceled by Close: ends every transport
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[[sessionIDLen]byte]*session
	perIP    map[netip.Addr]int
	pending  int
	expired  expiredSet
	queue    []*Conn
	wake     *sync.Cond
	closed   bool
	draining bool
}

// NewServer returns a Server.
func NewServer(opts *ServerOptions) (*Server, error) {
	o, err := opts.cloneWithDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer, "server")
	if err != nil {
		return nil, fmt.Errorf("resume: metrics: %w", err)
	}
	s := &Server{
		opts: o, m: m,
		cfg: &sessionConfig{window: uint32(o.Window), ping: o.PingInterval, dead: o.DeadTimeout,
			maxMsg: o.MaxMessageSize, closeTimeout: o.CloseTimeout, logger: o.Logger, m: m},
		sessions: make(map[[sessionIDLen]byte]*session),
		perIP:    make(map[netip.Addr]int),
		expired:  expiredSet{max: 8192},
	}
	s.wake = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Accept returns the next new session. It returns net.ErrClosed once the
// server is closed or shutting down.
func (srv *Server) Accept() (*Conn, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for len(srv.queue) == 0 {
		if srv.closed || srv.draining {
			return nil, net.ErrClosed
		}
		srv.wake.Wait()
	}
	c := srv.queue[0]
	srv.queue[0] = nil
	srv.queue = srv.queue[1:]
	if len(srv.queue) == 0 {
		srv.queue = nil
	}
	return c, nil
}

// ServeConn serves a byte-stream transport. c starts with the "DGS1"
// preamble. It blocks while the transport is in use and closes c.
func (srv *Server) ServeConn(ctx context.Context, c net.Conn, info TransportInfo) error {
	c.SetReadDeadline(time.Now().Add(srv.opts.HandshakeTimeout)) //nolint:errcheck
	if err := readPreamble(c); err != nil {
		c.Close()
		return err
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	return srv.ServeTransport(ctx, newStreamTransport(c), info)
}

// ServeTransport runs the handshake on t and then serves it as the
// transport of a new or resumed session. It blocks while the transport is in
// use and closes it before returning. The returned error says why the
// transport ended (nil after a clean close).
func (srv *Server) ServeTransport(ctx context.Context, t Transport, info TransportInfo) error {
	done := make(chan error, 1)
	srv.StartTransport(ctx, t, info, func(err error) { done <- err })
	return <-done
}

// StartTransport is ServeTransport in the background: it runs the handshake
// on t, returns, and serves the transport until it ends; then it calls done
// (if not nil) once with the error ServeTransport would have returned. ctx
// must outlive the transport (cancelling it ends the transport). A
// WebSocket on a plain socket costs, while idle, no buffer and, after its
// first quiet second, no goroutine (on Linux); the caller's goroutine is
// free as soon as StartTransport returns.
func (srv *Server) StartTransport(ctx context.Context, t Transport, info TransportInfo, done func(error)) {
	// ctx ending closes the transport: one registration, none for a ctx
	// that cannot end. Close reaches a transport in its handshake through
	// the handshake's context and a served one through its session, so a
	// served transport costs no context of its own.
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { t.Close(CloseTransportDead, "") }) //nolint:errcheck
	}
	finish := func(err error) {
		stop()
		if done != nil {
			done(err)
		}
	}
	if err := srv.handshake(ctx, t, info, finish); err != nil {
		releaseTransportBuffers(t)
		finish(err)
	}
}

// handshake runs the handshake of StartTransport and, when it succeeds,
// starts serving the transport, which ends with finish.
func (srv *Server) handshake(ctx context.Context, t Transport, info TransportInfo, finish func(error)) error {
	start := time.Now()
	hctx, hcancel := context.WithTimeout(ctx, srv.opts.HandshakeTimeout)
	stopClose := context.AfterFunc(srv.ctx, hcancel)
	defer func() {
		stopClose()
		hcancel()
	}()
	msg, err := t.ReadMessage(hctx)
	if err != nil {
		if errors.Is(hctx.Err(), context.DeadlineExceeded) {
			return srv.refuse(hctx, t, CloseHandshakeTimeout, "handshake timeout")
		}
		t.Close(CloseProtocolError, "") //nolint:errcheck
		return fmt.Errorf("resume: read client hello: %w", err)
	}
	hello, err := parseClientHello(msg)
	switch {
	case len(msg) >= 2 && msg[0] == msgClientHello && msg[1] != ProtocolVersion:
		// Checked first: a future version may lay out the rest differently.
		return srv.refuse(hctx, t, CloseUnsupportedVersion, "versions="+strconv.Itoa(ProtocolVersion))
	case err != nil:
		return srv.refuse(hctx, t, CloseProtocolError, err.Error())
	case hello.version != ProtocolVersion:
		return srv.refuse(hctx, t, CloseUnsupportedVersion, "versions="+strconv.Itoa(ProtocolVersion))
	case hello.suite != SuiteChaChaPoly && hello.suite != SuiteAESGCM,
		hello.pattern != PatternNN && hello.pattern != PatternNK:
		return srv.refuse(hctx, t, CloseUnsupportedSuite, "unsupported suite or pattern")
	}
	var (
		s *session
		l *link
	)
	if hello.resume {
		s, l, err = srv.resumeSession(hctx, t, hello, info)
	} else {
		s, l, err = srv.newSession(hctx, t, hello, info)
	}
	if err != nil {
		return err
	}
	stopClose()
	hcancel()
	if srv.m != nil {
		if hello.resume {
			srv.m.resumes.Inc()
			srv.m.resumed.Observe(time.Since(start).Seconds())
		} else {
			srv.m.handshake.Observe(time.Since(start).Seconds())
		}
	}
	l.serveReads(func(err error) {
		s.detach(l, err)
		if err == errSessionDone || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
			err = nil
		}
		finish(err)
	})
	return nil
}

func (srv *Server) ttlSeconds() uint32 { return uint32(srv.opts.DetachedTTL / time.Second) }

// serverPayload returns the server hello payload of a handshake, with the
// frame mode when the client offered plain-in-TLS frames: plain only inside
// TLS 1.3 that this process terminated, unless AlwaysSeal (§5.7).
func (srv *Server) serverPayload(hello *clientHello, info *TransportInfo, id [sessionIDLen]byte, delivered uint64) serverPayload {
	return serverPayload{sessionID: id, delivered: delivered, window: srv.cfg.window, ttl: srv.ttlSeconds(),
		hasMode: hello.plain,
		plain:   hello.plain && !srv.opts.AlwaysSeal && info.TLSVersion >= tls.VersionTLS13}
}

func (srv *Server) releaseIPLocked(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	if srv.perIP[ip]--; srv.perIP[ip] <= 0 {
		delete(srv.perIP, ip)
	}
}

// forgetLocked removes an ended session from the table. The caller holds
// s.mu (lock order: session, then server).
func (srv *Server) forgetLocked(s *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
		srv.releaseIPLocked(s.info.RemoteAddr.Addr().Unmap())
	}
	if CloseStatus(s.err) == CloseSessionExpired {
		srv.expired.add(s.id)
	}
}

// armTTLLocked starts the detached-session timer. The caller holds s.mu.
func (srv *Server) armTTLLocked(s *session) {
	if s.ttlTimer != nil {
		s.ttlTimer.Reset(srv.opts.DetachedTTL)
		return
	}
	s.ttlTimer = time.AfterFunc(srv.opts.DetachedTTL, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.link == nil && s.err == nil && time.Since(s.detachedAt) >= srv.opts.DetachedTTL-time.Millisecond {
			s.endLocked(&CloseError{Code: CloseSessionExpired, Reason: "detached session expired"})
		}
	})
}

// Shutdown drains the server: Accept returns net.ErrClosed, new sessions
// are refused with 1001, every attached session is closed with 1001 after
// its in-flight data (the peer answers once it has received everything),
// and detached sessions end at once. When ctx ends first, the remaining
// sessions are closed hard and ctx.Err() is returned.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.draining = true
	srv.wake.Broadcast()
	list := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		s.mu.Lock()
		if s.err == nil {
			if s.link == nil {
				s.endLocked(&CloseError{Code: CloseGoingAway, Reason: "shutting down"})
			} else if s.localClose == nil {
				s.localClose = &CloseError{Code: CloseGoingAway, Reason: "shutting down"}
				s.wakeSendLocked()
				s.kickLocked()
			}
		}
		s.mu.Unlock()
	}
	var err error
	for _, s := range list {
		select {
		case <-s.doneChan():
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	srv.Close()
	return err
}

// Close closes the server at once: every session ends with net.ErrClosed
// and every transport is closed. It is idempotent.
func (srv *Server) Close() error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil
	}
	srv.closed = true
	srv.wake.Broadcast()
	list := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		list = append(list, s)
	}
	srv.mu.Unlock()
	srv.cancel()
	for _, s := range list {
		s.mu.Lock()
		l := s.link
		s.endLocked(net.ErrClosed)
		s.mu.Unlock()
		if l != nil {
			l.shut(CloseGoingAway, "server closed")
		}
	}
	return nil
}

// expiredSet remembers the IDs of recently expired sessions (bounded FIFO)
// so that a late resume is told 4001 rather than 4000.
type expiredSet struct {
	max  int
	ids  map[[sessionIDLen]byte]struct{}
	fifo [][sessionIDLen]byte
}

func (e *expiredSet) add(id [sessionIDLen]byte) {
	if e.ids == nil {
		e.ids = make(map[[sessionIDLen]byte]struct{})
	}
	if len(e.fifo) >= e.max {
		delete(e.ids, e.fifo[0])
		e.fifo = e.fifo[1:]
	}
	e.ids[id] = struct{}{}
	e.fifo = append(e.fifo, id)
}

func (e *expiredSet) has(id [sessionIDLen]byte) bool {
	_, ok := e.ids[id]
	return ok
}
