package resume

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DialOptions configure Dial. A nil *DialOptions uses every default; the
// struct is copied and not modified.
type DialOptions struct {
	// ServerKey is the gateway's pinned public key (unpadded base64url, from
	// Key.PublicString). With it the handshake is NK and a man in the middle
	// is detected (CloseServerKeyMismatch); without it, NN (anonymous).
	ServerKey string
	// Suite is the cipher suite to propose (default SuiteChaChaPoly).
	Suite Suite
	// Window is the receive window in bytes (default 256 KiB).
	Window int
	// PingInterval (default 10 s) and DeadTimeout (default 30 s): liveness.
	PingInterval, DeadTimeout time.Duration
	// HandshakeTimeout bounds one transport's dial and handshake (default 10 s).
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the close exchange of Conn.Close (default 5 s).
	CloseTimeout time.Duration
	// MaxMessageSize bounds a message assembled by ReadMessage (default 16 MiB).
	MaxMessageSize int
	// BackoffMin (default 100 ms) and BackoffMax (default 10 s) bound the
	// exponential backoff with full jitter between failed reconnects.
	BackoffMin, BackoffMax time.Duration
	// GiveUp ends the session (CloseSessionExpired) when no transport could be
	// resumed for this long (default: the detached TTL the server announced).
	GiveUp time.Duration
	// TLSConfig is used for wss:// and tls:// (nil: defaults, ServerName from the URL).
	TLSConfig *tls.Config
	// AlwaysSeal keeps the session's AEAD on every frame even inside TLS.
	// By default an unpinned (NN) session over wss:// or tls:// whose
	// certificate is verified (no InsecureSkipVerify) offers plain-in-TLS
	// frames (docs/protocol.md §5.7): when the gateway terminates that TLS
	// 1.3 connection itself, frames after CONFIRM rely on TLS alone and
	// each byte is encrypted once instead of twice. A pinned (ServerKey)
	// session always seals.
	AlwaysSeal bool
	// HTTPHeader is sent with the WebSocket upgrade request.
	HTTPHeader http.Header
	// Proxy is the proxy URL (socks5://user:pass@host:port, socks5h://…,
	// or http://[user:pass@]host:port for HTTP CONNECT); "" takes it from
	// the standard environment variables (HTTPS_PROXY for wss://,
	// HTTP_PROXY for ws://, else ALL_PROXY; NO_PROXY; loopback targets are
	// never proxied from the environment); "direct" disables proxies.
	Proxy string
	// DialContext, if set, opens the network connections (after any proxy
	// selection it replaces everything: proxy handling is then the caller's).
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// OnStateChange is called, in order and from its own goroutine, with
	// every state change of the session. It must not block for long.
	OnStateChange func(State)
	// Logger receives debug logs (nil: discarded).
	Logger *slog.Logger
	// Registerer receives client-side metrics (nil: none).
	Registerer prometheus.Registerer
	// Rand is the source of randomness (nil: crypto/rand).
	Rand io.Reader
}

func (o *DialOptions) cloneWithDefaults() (DialOptions, error) {
	var c DialOptions
	if o != nil {
		c = *o
	}
	if c.Suite == 0 {
		c.Suite = SuiteChaChaPoly
	}
	if c.Suite != SuiteChaChaPoly && c.Suite != SuiteAESGCM {
		return c, errors.New("resume: unknown suite")
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Window < MinWindow || c.Window > MaxWindow {
		return c, fmt.Errorf("resume: window %d outside %d..%d", c.Window, MinWindow, MaxWindow)
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&c.PingInterval, DefaultPingInterval}, {&c.DeadTimeout, DefaultDeadTimeout},
		{&c.HandshakeTimeout, DefaultHandshakeTimeout}, {&c.CloseTimeout, DefaultCloseTimeout},
		{&c.BackoffMin, 100 * time.Millisecond}, {&c.BackoffMax, 10 * time.Second}} {
		if *d.p <= 0 {
			*d.p = d.v
		}
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c, nil
}

// clientSide is the client's part of a session: how to open transports and
// the goroutine that reads them and reconnects.
type clientSide struct {
	opts    DialOptions
	u       *url.URL
	pinned  []byte
	pattern Pattern
	plain   bool // offer plain-in-TLS frames in every hello (§5.7)
	ttl     time.Duration
	m       *metrics

	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (cl *clientSide) stop() {
	cl.cancel()
	cl.wg.Wait()
}

// Dial opens a session to the gateway at url: ws://host/route,
// wss://host/route (WebSocket, subprotocol dualgate.v1), tcp://host:port or
// tls://host:port (byte stream). It returns once the first handshake is
// done; the session then survives transport failures by resuming.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, error) {
	o, err := opts.cloneWithDefaults()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("resume: dial: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "tcp", "tls":
	default:
		return nil, fmt.Errorf("resume: dial: unsupported scheme %q", u.Scheme)
	}
	cl := &clientSide{opts: o, u: u, pattern: PatternNN}
	if o.ServerKey != "" {
		if cl.pinned, err = ParsePublicKey(o.ServerKey); err != nil {
			return nil, err
		}
		cl.pattern = PatternNK
	}
	cl.plain = (u.Scheme == "wss" || u.Scheme == "tls") && cl.pattern == PatternNN && !o.AlwaysSeal &&
		(o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify)
	if cl.m, err = newMetrics(o.Registerer, "client"); err != nil {
		return nil, fmt.Errorf("resume: metrics: %w", err)
	}
	cfg := &sessionConfig{window: uint32(o.Window), ping: o.PingInterval, dead: o.DeadTimeout,
		maxMsg: o.MaxMessageSize, closeTimeout: o.CloseTimeout, logger: o.Logger, m: cl.m, onState: o.OnStateChange}
	s := newSession(cfg, true)
	s.cl = cl
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()
	hello := clientHello{version: ProtocolVersion, suite: o.Suite, pattern: cl.pattern, plain: cl.plain}
	t, ph, err := cl.open(hctx, hello, helloPayload{window: uint32(o.Window)}, nil)
	if err != nil {
		return nil, err
	}
	sp, res, err := cl.handshake(hctx, t, ph)
	if err != nil {
		t.Close(CloseStatus(err), "") //nolint:errcheck
		return nil, err
	}
	s.id, s.peerWindow = sp.sessionID, sp.window
	cl.ttl = time.Duration(sp.ttl) * time.Second
	if s.secret, err = deriveResumeSecret(res.hash); err != nil {
		t.Close(CloseInternalError, "") //nolint:errcheck
		return nil, err
	}
	if cl.m != nil {
		cl.m.handshake.Observe(time.Since(start).Seconds())
	}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	lctx, lcancel := context.WithCancel(cl.ctx)
	l := newLink(lctx, lcancel, s, t, res, 0)
	s.mu.Lock()
	l.confirm = true
	s.attachLocked(l, 0, 0) //nolint:errcheck // always in range for a new session
	s.mu.Unlock()
	cl.wg.Add(1)
	go cl.routineSession(s, l)
	return &Conn{s: s, local: addr("dualgate-client"), remote: addr(u.Redacted())}, nil
}

// pendingHello is a client hello computed while its transport is dialled.
type pendingHello struct {
	ch   *clientHandshake
	msg1 []byte
	err  error
}

// open dials a transport and, meanwhile, computes the client hello (an
// X25519 key generation, and for NK a DH): the CPU work then overlaps the
// TCP connect and the WebSocket upgrade instead of following them on the
// way to the first byte of the session. If the helper goroutine has not
// run by the time the dial returns (a loaded CPU), the hello is computed
// here instead of waiting for it to be scheduled; the goroutine then finds
// the work done and ends at once.
func (cl *clientSide) open(ctx context.Context, hello clientHello, hp helloPayload, psk []byte) (Transport, *pendingHello, error) {
	ph := new(pendingHello)
	var once sync.Once
	compute := func() {
		ph.ch, ph.msg1, ph.err = startClientHandshake(hello, hp, psk, cl.pinned, cl.opts.Rand)
	}
	go once.Do(compute)
	t, err := cl.dialTransport(ctx)
	once.Do(compute) // returns once the hello is there, whoever computed it
	if err != nil {
		return nil, nil, err
	}
	if ph.err != nil {
		t.Close(CloseInternalError, "") //nolint:errcheck
		return nil, nil, ph.err
	}
	return t, ph, nil
}

// handshake sends the client hello of ph on t and reads the server hello.
func (cl *clientSide) handshake(ctx context.Context, t Transport, ph *pendingHello) (serverPayload, handshakeResult, error) {
	if err := t.WriteMessage(ctx, ph.msg1); err != nil {
		return serverPayload{}, handshakeResult{}, fmt.Errorf("resume: write client hello: %w", err)
	}
	msg2, err := t.ReadMessage(ctx)
	if err != nil {
		return serverPayload{}, handshakeResult{}, fmt.Errorf("resume: read server hello: %w", err)
	}
	return ph.ch.readServerHello(msg2)
}

// routineSession reads the attached transport and, when it fails, resumes
// on a new one, until the session ends.
func (cl *clientSide) routineSession(s *session, l *link) {
	defer cl.wg.Done()
	for l != nil {
		err := l.routineRead()
		s.detach(l, err)
		cl.opts.Logger.Debug("resume: transport ended", "session", s.idString(), "err", err)
		l = cl.reconnect(s)
	}
}

// reconnect resumes the session with backoff; nil means the session ended.
func (cl *clientSide) reconnect(s *session) *link {
	lost := time.Now()
	giveUp := cl.opts.GiveUp
	if giveUp <= 0 {
		giveUp = cl.ttl
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			ceil := cl.opts.BackoffMin << min(attempt-1, 20)
			if ceil > cl.opts.BackoffMax || ceil <= 0 {
				ceil = cl.opts.BackoffMax
			}
			d := time.Duration(0)
			if n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)+1)); err == nil {
				d = time.Duration(n.Int64())
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-cl.ctx.Done():
			case <-s.doneChan():
			}
			t.Stop()
		}
		s.mu.Lock()
		ended := s.err != nil
		if !ended && (cl.ctx.Err() != nil) {
			s.endLocked(net.ErrClosed)
			ended = true
		}
		if !ended && giveUp > 0 && time.Since(lost) > giveUp {
			s.endLocked(&CloseError{Code: CloseSessionExpired, Reason: "gave up reconnecting"})
			ended = true
		}
		s.mu.Unlock()
		if ended {
			return nil
		}
		l, err := cl.resumeOnce(s)
		if err == nil {
			return l
		}
		cl.opts.Logger.Debug("resume: resume failed", "session", s.idString(), "attempt", attempt, "err", err)
		var ce *CloseError
		if errors.As(err, &ce) && ce.Code.final() {
			s.mu.Lock()
			if s.localClose != nil && ce.Code == CloseUnknownSession {
				// The server finished the close exchange we could not see.
				s.endLocked(net.ErrClosed)
			} else {
				s.endLocked(ce)
			}
			s.mu.Unlock()
			return nil
		}
	}
}

// resumeOnce opens one transport and runs a resume handshake on it. The
// flusher that attaching starts sends CONFIRM, and the client's own
// retransmission with it in the same write on a batching transport.
func (cl *clientSide) resumeOnce(s *session) (*link, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(cl.ctx, cl.opts.HandshakeTimeout)
	defer cancel()
	// The counter is taken before the dial (an attempt whose dial fails
	// uses one up too: it only has to grow, docs/protocol.md §4.1).
	s.mu.Lock()
	s.maxCounter++
	counter := s.maxCounter
	s.mu.Unlock()
	hello := clientHello{version: ProtocolVersion, suite: cl.opts.Suite, pattern: cl.pattern, plain: cl.plain, resume: true, sessionID: s.id}
	t, ph, err := cl.open(ctx, hello, helloPayload{window: uint32(cl.opts.Window), counter: counter}, s.secret)
	if err != nil {
		return nil, err
	}
	sp, res, err := cl.handshake(ctx, t, ph)
	if err == nil && sp.sessionID != s.id {
		err = protoErr("server hello for another session")
	}
	if err != nil {
		t.Close(CloseTransportDead, "") //nolint:errcheck
		return nil, err
	}
	lctx, lcancel := context.WithCancel(cl.ctx)
	l := newLink(lctx, lcancel, s, t, res, counter)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Close(CloseNormal, "") //nolint:errcheck
		return nil, s.err
	}
	prevSent := s.sent
	l.confirm = true
	if err := s.attachLocked(l, sp.delivered, s.rq.start); err != nil {
		t.Close(CloseTooFarBehind, "") //nolint:errcheck
		return nil, err
	}
	if cl.m != nil {
		cl.m.resumes.Inc()
		cl.m.resumed.Observe(time.Since(start).Seconds())
		if prevSent > sp.delivered {
			cl.m.bytesReplayed.Add(float64(prevSent - sp.delivered))
		}
	}
	return l, nil
}
