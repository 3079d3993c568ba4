package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the echo endpoint.
const (
	echoMaxMessage = 64 << 10
	echoIdle       = 5 * time.Minute
)

// routes returns the HTTP routes served on both ws:// and wss://.
func (g *gateway) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	mux.HandleFunc("GET /echo", g.echo)
	return mux
}

// echo is a WebSocket echo, to try ws:// and wss:// on the one port.
func (g *gateway) echo(w http.ResponseWriter, r *http.Request) {
	g.handlers.Add(1)
	defer g.handlers.Done()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(echoMaxMessage)
	ctx := g.base
	for {
		rctx, cancel := context.WithTimeout(ctx, echoIdle)
		typ, msg, err := c.Read(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				_ = c.Close(websocket.StatusGoingAway, "server shutting down")
			}
			if s := websocket.CloseStatus(err); s == -1 && !errors.Is(err, context.Canceled) {
				g.log.Debug("gateway: echo read", "err", err)
			}
			return
		}
		wctx, cancel := context.WithTimeout(ctx, echoIdle)
		err = c.Write(wctx, typ, msg)
		cancel()
		if err != nil {
			return
		}
	}
}
