package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dualgate/dualgate/certs"
	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
	"github.com/dualgate/dualgate/wsbridge"
)

// gateway is the wired-up process:
//
//	net.Listen ─► listener (sniff) ─┬─ TLS ─► tlsmux ─┬─ HTTP ──┐
//	                                │                 ├─ Stream ┤
//	                                │                 └─ Legacy ┤
//	                                ├─ HTTP ────────────────────┼─► http.Server ─► wsbridge.Handler ─► resume.Server
//	                                ├─ Stream ──────────────────┼─► resume.Server.ServeConn
//	                                └─ Legacy ──────────────────┴─► legacy.Server.ServeConn
//	resume.Server.Accept, legacy.Server.Accept ─► wsbridge.Serve ─► upstreams
//
// Build it with newGateway, run serve, stop it with shutdown (drain) or
// close.
type gateway struct {
	cfg *config
	log *slog.Logger
	reg *prometheus.Registry

	key     *resume.Key
	certs   *certs.Manager
	cache   *sniff.IPCache
	l       *listener.Listener
	mux     *tlsmux.Mux // nil with -tls off
	srv     *http.Server
	resume  *resume.Server
	legacy  *legacy.Server // nil without -legacy
	bridger *wsbridge.Bridger
	wsh     *wsbridge.Handler

	draining atomic.Bool

	// base is the context of the byte-stream and legacy transports; close
	// cancels it once everything else is shut down.
	base       context.Context
	cancelBase context.CancelFunc
	conns      sync.WaitGroup // ServeConn goroutines, added to only through track
	connsMu    struct {
		sync.Mutex
		closed bool // conns is being waited for: no more Add
	}
	loops    sync.WaitGroup // accept loops other than the HTTP server's
	loopErrs chan error

	closeOnce sync.Once
}

// newGateway builds the gateway and binds its port. Nothing is served
// until serve. ctx bounds only the start-up work (certificates).
func newGateway(ctx context.Context, cfg *config, log *slog.Logger) (_ *gateway, err error) {
	g := &gateway{cfg: cfg, log: log, reg: prometheus.NewRegistry(), loopErrs: make(chan error, 16)}
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g.base, g.cancelBase = context.WithCancel(context.Background())
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
			g.cancelBase()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: data dir: %w", err)
	}
	if g.key, err = resume.LoadOrCreateKey(filepath.Join(cfg.DataDir, "server.key")); err != nil {
		return nil, fmt.Errorf("gateway: server key: %w", err)
	}

	// Bind before certs.New: in ACME mode certmagic must find the port taken.
	inner, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cleanup = append(cleanup, func() { inner.Close() })
	copts, err := g.certOptions(inner.Addr())
	if err != nil {
		return nil, err
	}
	if g.certs, err = certs.New(ctx, copts); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cleanup = append(cleanup, func() { g.certs.Close() })

	g.cache = sniff.NewIPCache(cfg.IPCacheSize, cfg.IPCacheTTL)
	// Only the kinds somebody accepts: a served kind nobody accepts would
	// hold its connections until shutdown. TLS is always accepted: in off
	// mode, to refuse it with a logged reason.
	kinds := []sniff.Kind{sniff.KindTLS, sniff.KindHTTP, sniff.KindStream}
	inner2 := []sniff.Kind{sniff.KindHTTP, sniff.KindStream}
	if cfg.Legacy {
		kinds = append(kinds, sniff.KindLegacy)
		inner2 = append(inner2, sniff.KindLegacy)
	}
	g.l = listener.New(inner, &listener.Options{
		Kinds:          kinds,
		Logger:         log,
		Registerer:     g.reg,
		SniffTimeout:   cfg.SniffTimeout,
		MaxSniffing:    cfg.MaxSniffing,
		MaxConns:       cfg.MaxConns,
		MaxConnsPerIP:  cfg.MaxConnsPerIP,
		TrustedProxies: cfg.TrustedProxies,
		IPCache:        g.cache,
	})
	cleanup = append(cleanup, func() { g.l.Close() })
	if tc := g.certs.TLSConfig(); tc != nil {
		g.mux = tlsmux.New(g.l.For(sniff.KindTLS), tc, &tlsmux.Options{
			Logger:           log,
			Registerer:       g.reg,
			Kinds:            inner2,
			IPCache:          g.cache,
			HandshakeTimeout: cfg.TLSHandshakeTimeout,
			SniffTimeout:     cfg.SniffTimeout,
		})
		cleanup = append(cleanup, func() { g.mux.Close() })
	}

	if g.resume, err = resume.NewServer(&resume.ServerOptions{
		Key:              g.key,
		Window:           cfg.Window,
		PingInterval:     cfg.PingInterval,
		DeadTimeout:      cfg.DeadTimeout,
		HandshakeTimeout: cfg.HandshakeTimeout,
		CloseTimeout:     cfg.CloseTimeout,
		DetachedTTL:      cfg.DetachedTTL,
		MaxSessions:      cfg.MaxSessions,
		MaxSessionsPerIP: cfg.MaxSessionsPerIP,
		MaxMessageSize:   cfg.MaxMessageSize,
		AlwaysSeal:       cfg.AlwaysSeal,
		Logger:           log,
		Registerer:       g.reg,
	}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cleanup = append(cleanup, func() { g.resume.Close() })
	if cfg.Legacy {
		// legacy.NewServer logs the weak-cryptography warning itself.
		if g.legacy, err = legacy.NewServer(&legacy.ServerOptions{
			Encrypt:          cfg.LegacyEncrypt,
			ResendBuffer:     cfg.LegacyResendBuffer,
			ReconnectWait:    cfg.LegacyReconnectWait,
			HandshakeTimeout: cfg.HandshakeTimeout,
			Logger:           log,
			Registerer:       g.reg,
		}); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		cleanup = append(cleanup, func() { g.legacy.Close() })
	}
	if g.bridger, err = wsbridge.New(cfg.routes, &wsbridge.Options{
		DialTimeout:  cfg.UpstreamDialTimeout,
		CloseTimeout: cfg.CloseTimeout,
		BufferSize:   cfg.BridgeBuffer,
		DefaultRoute: cfg.StreamRoute,
		SessionInfo:  legacySessionInfo,
		Logger:       log,
		Registerer:   g.reg,
	}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cleanup = append(cleanup, func() { g.bridger.Close() })
	if g.wsh, err = wsbridge.NewHandler(g.resume, cfg.routes, &wsbridge.HandlerOptions{
		OriginPatterns: cfg.Origins.vals,
		NotFound:       g.routes(),
		Logger:         log,
		Registerer:     g.reg,
	}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.srv = &http.Server{
		Handler:           tlsmux.Handler(g.certs.HTTPChallengeHandler(g.wsh)),
		ConnContext:       tlsmux.ConnContext,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return g, nil
}

func (g *gateway) certOptions(bound net.Addr) (*certs.Options, error) {
	cfg := g.cfg
	opts := &certs.Options{
		Mode:             cfg.tlsMode,
		DataDir:          cfg.DataDir,
		CertFile:         cfg.CertFile,
		KeyFile:          cfg.KeyFile,
		PollInterval:     cfg.CertPollInterval,
		DevNames:         cfg.DevNames.vals,
		Domains:          cfg.acmeDomains,
		Email:            cfg.ACMEEmail,
		CA:               cfg.ACMECA,
		DisableHTTP01:    cfg.ACMEDisableHTTP01,
		DisableTLSALPN01: cfg.ACMEDisableTLSALPN01,
		Logger:           g.log,
		Registerer:       g.reg,
	}
	if ta, ok := bound.(*net.TCPAddr); ok {
		opts.Port = ta.Port
	}
	if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			opts.ListenHost = host
		}
	}
	if cfg.ACMECARoot != "" {
		b, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("gateway: -acme-ca-root: %w", err)
		}
		opts.CARootsPEM = b
	}
	if len(cfg.ACMEOnDemandAllow.vals) > 0 || cfg.ACMEOnDemandAsk != "" {
		opts.OnDemand = &certs.OnDemand{Allowlist: cfg.ACMEOnDemandAllow.vals, AskURL: cfg.ACMEOnDemandAsk}
	}
	return opts, nil
}

// legacySessionInfo lets the bridge route legacy sessions (wsbridge does
// not import legacy).
func legacySessionInfo(c net.Conn) (wsbridge.Info, bool) {
	li, ok := legacy.SessionInfo(c)
	return wsbridge.Info{Route: li.Route, RemoteAddr: li.RemoteAddr, Secure: li.Secure}, ok
}

// addr returns the bound address of the port.
func (g *gateway) addr() net.Addr { return g.l.Addr() }

// hostPort is the address to print in URLs: localhost for a wildcard.
func (g *gateway) hostPort() string {
	host, port, _ := net.SplitHostPort(g.addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// serve serves everything until shutdown; it returns nil after a shutdown
// and the first serving error otherwise.
func (g *gateway) serve() error {
	httpLs := []net.Listener{g.l.For(sniff.KindHTTP)}
	g.acceptLoop(g.l.For(sniff.KindStream), false, g.serveStream)
	if g.mux != nil {
		httpLs = append(httpLs, g.mux.For(sniff.KindHTTP))
		g.acceptLoop(g.mux.For(sniff.KindStream), true, g.serveStream)
	} else {
		g.acceptLoop(g.l.For(sniff.KindTLS), false, g.refuseTLS)
	}
	if g.legacy != nil {
		g.acceptLoop(g.l.For(sniff.KindLegacy), false, g.serveLegacy)
		if g.mux != nil {
			g.acceptLoop(g.mux.For(sniff.KindLegacy), true, g.serveLegacy)
		}
	}
	g.loops.Go(func() { g.loopErrs <- bridgeLoop(wsbridge.Serve(context.Background(), g.bridger, g.resume)) })
	if g.legacy != nil {
		g.loops.Go(func() { g.loopErrs <- bridgeLoop(wsbridge.Serve(context.Background(), g.bridger, g.legacy)) })
	}

	errc := make(chan error, len(httpLs))
	for _, l := range httpLs {
		go func() { errc <- g.srv.Serve(l) }()
	}
	var first error
	for range httpLs {
		err := <-errc
		if g.draining.Load() && errors.Is(err, net.ErrClosed) {
			err = nil // shutdown closed the port before the HTTP server
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
			// One side failed: stop the other so that serve returns.
			_ = g.srv.Close()
		}
	}
	return first
}

// bridgeLoop turns the normal ends of wsbridge.Serve into nil.
func bridgeLoop(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, legacy.ErrServerClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// track adds one to g.conns unless close is waiting for it already (a
// WaitGroup must not grow from zero while it is waited for).
func (g *gateway) track() bool {
	g.connsMu.Lock()
	defer g.connsMu.Unlock()
	if g.connsMu.closed {
		return false
	}
	g.conns.Add(1)
	return true
}

// acceptLoop accepts from l until it is closed and hands each connection to
// serve in its own goroutine, owned by g.conns.
func (g *gateway) acceptLoop(l net.Listener, secure bool, serve func(net.Conn, bool)) {
	g.loops.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				// The per-kind listeners fail only once closed.
				return
			}
			if !g.track() {
				c.Close()
				return
			}
			go func() {
				defer g.conns.Done()
				serve(c, secure)
			}()
		}
	})
}

func (g *gateway) serveStream(c net.Conn, secure bool) {
	info := resume.TransportInfo{Route: g.cfg.StreamRoute, RemoteAddr: listener.ClientAddr(c), Secure: secure}
	if st, ok := tlsmux.ConnectionState(c); ok {
		info.TLSVersion = st.Version
	}
	if err := g.resume.ServeConn(g.base, c, info); err != nil {
		g.log.Debug("gateway: byte-stream transport ended", "client", info.RemoteAddr, "err", err)
	}
}

func (g *gateway) serveLegacy(c net.Conn, secure bool) {
	info := legacy.Info{Route: g.cfg.LegacyRoute, RemoteAddr: listener.ClientAddr(c), Secure: secure}
	if err := g.legacy.ServeConn(g.base, c, info); err != nil {
		g.log.Debug("gateway: legacy transport ended", "client", info.RemoteAddr, "err", err)
	}
}

// refuseTLS closes a TLS connection in -tls off mode, saying why.
func (g *gateway) refuseTLS(c net.Conn, _ bool) {
	g.log.Info("gateway: TLS connection refused", "client", listener.ClientAddr(c), "reason", certs.ErrTLSDisabled)
	c.Close()
}

// ready reports whether the gateway takes new sessions, and why not.
func (g *gateway) ready() (bool, string) {
	if g.draining.Load() {
		return false, "draining"
	}
	if g.cfg.tlsMode == certs.ModeACME {
		got := g.certs.ObtainedNames()
		for _, d := range g.cfg.acmeDomains {
			if _, ok := got[d]; !ok {
				return false, "no certificate yet for " + d
			}
		}
	}
	return true, "ready"
}

// reload re-reads the certificates and the routes of cfg (the new
// configuration read again from flags, environment and file). Sessions
// keep running; only new sessions see the new routes.
func (g *gateway) reload(cfg *config) error {
	var errs []error
	if err := g.certs.Reload(); err != nil {
		errs = append(errs, err)
		g.log.Error("gateway: reload: certificates kept", "err", err)
	} else {
		g.log.Info("gateway: reload: certificates reloaded", "mode", g.cfg.tlsMode.String())
	}
	if cfg != nil {
		old := g.bridger.Routes()
		g.wsh.SetRoutes(cfg.routes)
		g.bridger.SetRoutes(cfg.routes)
		g.log.Info("gateway: reload: routes", "before", routeList(old), "after", routeList(cfg.routes))
		if keys := g.cfg.changedKeys(cfg); len(keys) > 0 {
			g.log.Warn("gateway: reload: these settings changed but need a restart", "keys", keys)
		}
	}
	return errors.Join(errs...)
}

func routeList(t *wsbridge.Routes) []string {
	var s []string
	for _, r := range t.All() {
		s = append(s, r.String())
	}
	return s
}

// shutdown drains the gateway within ctx: not ready, stop accepting,
// sessions told 1001 after their in-flight data, upstreams closed cleanly,
// then everything closed. Whatever is left when ctx ends is closed hard.
func (g *gateway) shutdown(ctx context.Context) error {
	g.draining.Store(true)
	var errs []error
	add := func(what string, err error) {
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("gateway: %s: %w", what, err))
		}
	}
	// Stop accepting: the port first (connections already handed out stay
	// open), then new upgrades (Handler.Shutdown waits for transports,
	// which the resume server's shutdown ends).
	add("listener", g.l.Close())
	if g.mux != nil {
		add("tlsmux", g.mux.Close())
	}
	wshDone := make(chan error, 1)
	go func() { wshDone <- g.wsh.Shutdown(ctx) }()
	var wg sync.WaitGroup
	var drainErr, resumeErr, legacyErr error
	wg.Go(func() { drainErr = g.bridger.Drain(ctx) })
	wg.Go(func() { resumeErr = g.resume.Shutdown(ctx) })
	if g.legacy != nil {
		wg.Go(func() { legacyErr = g.legacy.Shutdown(ctx) })
	}
	wg.Wait()
	add("bridges", drainErr)
	add("sessions", resumeErr)
	add("legacy sessions", legacyErr)
	add("websocket handler", <-wshDone)
	add("http", g.srv.Shutdown(ctx))
	return errors.Join(append(errs, g.close())...)
}

// close closes everything at once (it is the end of shutdown) and waits
// for every goroutine the gateway started.
func (g *gateway) close() error {
	var err error
	g.closeOnce.Do(func() {
		g.draining.Store(true)
		g.l.Close()
		if g.mux != nil {
			g.mux.Close()
		}
		g.resume.Close()
		if g.legacy != nil {
			g.legacy.Close()
		}
		g.bridger.Close()
		g.wsh.Close()
		g.srv.Close()
		g.cancelBase()
		g.connsMu.Lock()
		g.connsMu.closed = true
		g.connsMu.Unlock()
		g.conns.Wait()
		g.loops.Wait()
		close(g.loopErrs)
		for e := range g.loopErrs {
			if e != nil {
				err = errors.Join(err, fmt.Errorf("gateway: bridge loop: %w", e))
			}
		}
		err = errors.Join(err, g.certs.Close())
	})
	return err
}
