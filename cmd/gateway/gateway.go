package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

// gateway is the wired-up process: the sniffing listener on the one port,
// TLS termination, and the HTTP server over both the plain and the decrypted
// HTTP kinds. Build it with newGateway, run serve, stop it with shutdown.
//
// Later layers plug in here: routes in routes(), the resume server and the
// legacy server as consumers of For(sniff.KindStream) / For(sniff.KindLegacy)
// in serve(), and certificates in newTLSConfig.
type gateway struct {
	cfg *config
	log *slog.Logger
	reg *prometheus.Registry

	cache *sniff.IPCache
	tls   *tls.Config
	l     *listener.Listener
	mux   *tlsmux.Mux
	srv   *http.Server

	// base is the context of long-lived handlers (WebSockets), which
	// http.Server.Shutdown does not wait for: shutdown cancels it and waits
	// for handlers.
	base       context.Context
	cancelBase context.CancelFunc
	handlers   sync.WaitGroup
}

// newGateway builds the gateway and binds its port. Nothing is served
// until serve.
func newGateway(cfg *config, log *slog.Logger) (*gateway, error) {
	g := &gateway{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g.base, g.cancelBase = context.WithCancel(context.Background())

	tlsCfg, err := newTLSConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	g.tls = tlsCfg
	inner, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.cache = sniff.NewIPCache(cfg.IPCacheSize, cfg.IPCacheTTL)
	g.l = listener.New(inner, &listener.Options{
		// Only the kinds somebody accepts: a served kind nobody accepts
		// would hold its connections until shutdown. The resume server adds
		// sniff.KindStream here (and in the tlsmux options), the legacy
		// server sniff.KindLegacy.
		Kinds:          []sniff.Kind{sniff.KindTLS, sniff.KindHTTP},
		Logger:         log,
		Registerer:     g.reg,
		SniffTimeout:   cfg.SniffTimeout,
		MaxSniffing:    cfg.MaxSniffing,
		MaxConns:       cfg.MaxConns,
		MaxConnsPerIP:  cfg.MaxConnsPerIP,
		TrustedProxies: cfg.TrustedProxies,
		IPCache:        g.cache,
	})
	g.mux = tlsmux.New(g.l.For(sniff.KindTLS), g.tls, &tlsmux.Options{
		Logger:           log,
		Registerer:       g.reg,
		Kinds:            []sniff.Kind{sniff.KindHTTP},
		IPCache:          g.cache,
		HandshakeTimeout: cfg.TLSHandshakeTimeout,
		SniffTimeout:     cfg.SniffTimeout,
	})
	g.srv = &http.Server{
		Handler:           tlsmux.Handler(g.routes()),
		ConnContext:       tlsmux.ConnContext,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return g.base },
	}
	return g, nil
}

// addr returns the bound address of the port.
func (g *gateway) addr() net.Addr { return g.l.Addr() }

// urls returns the ws:// and wss:// URLs of the echo endpoint.
func (g *gateway) urls() (ws, wss string) {
	host, port, _ := net.SplitHostPort(g.addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	hp := net.JoinHostPort(host, port)
	return "ws://" + hp + "/echo", "wss://" + hp + "/echo"
}

// serve serves plain and TLS HTTP until shutdown; it returns nil after a
// shutdown and the first serving error otherwise.
func (g *gateway) serve() error {
	errc := make(chan error, 2)
	for _, l := range []net.Listener{g.l.For(sniff.KindHTTP), g.mux.For(sniff.KindHTTP)} {
		go func() { errc <- g.srv.Serve(l) }()
	}
	var first error
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
			// One side failed: stop the other so that serve returns.
			_ = g.srv.Close()
		}
	}
	return first
}

// shutdown stops accepting, lets HTTP requests finish, closes WebSockets
// with "going away", then closes the listeners. It waits at most until ctx
// is done, then closes what is left.
func (g *gateway) shutdown(ctx context.Context) error {
	err := g.srv.Shutdown(ctx)
	g.cancelBase()
	waited := make(chan struct{})
	go func() { g.handlers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("gateway: handlers still running: %w", ctx.Err()))
	}
	if err != nil {
		_ = g.srv.Close()
	}
	return errors.Join(err, g.mux.Close(), g.l.Close())
}
