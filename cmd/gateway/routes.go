package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/web"
	"github.com/dualgate/dualgate/wsbridge"
)

// routes returns what the gateway serves besides the WebSocket routes
// (wsbridge.Handler serves those and passes everything else here):
// health, readiness, metrics, the optional legacy-over-WebSocket path, and
// the embedded demo page and client bundle.
func (g *gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := g.ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	if p := g.cfg.LegacyWSPath; p != "" {
		mux.HandleFunc("GET "+p, g.legacyWebSocket)
	}
	mux.Handle("/", web.NewHandler(&web.Options{ServerKey: g.key.PublicString(), Route: g.demoRoute()}))
	return mux
}

// demoRoute is the route the demo page connects to: the first built-in
// echo route, else the byte-stream route.
func (g *gateway) demoRoute() string {
	for _, r := range g.cfg.routes.All() {
		if r.Upstream.Kind == wsbridge.KindEcho {
			return r.Path
		}
	}
	return g.cfg.StreamRoute
}

// legacyWebSocket serves the legacy protocol in binary WebSocket messages
// (-legacy-ws-path); without -legacy it answers 404.
func (g *gateway) legacyWebSocket(w http.ResponseWriter, r *http.Request) {
	if g.legacy == nil || g.draining.Load() {
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: g.cfg.Origins.vals})
	if err != nil {
		return // Accept answered the client
	}
	c.SetReadLimit(int64(g.cfg.LegacyResendBuffer) + 64<<10)
	if !g.track() {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer g.conns.Done()
	nc := legacy.WebSocketConn(context.Background(), c)
	info := legacy.Info{Route: g.cfg.LegacyRoute, Secure: r.TLS != nil}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		info.RemoteAddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if err := g.legacy.ServeConn(g.base, nc, info); err != nil {
		g.log.Debug("gateway: legacy WebSocket transport ended", "client", info.RemoteAddr, "err", err)
	}
}
