package main

import (
	"context"
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
	// On shutdown, say "going away" instead of dropping the connection: the
	// close handshake runs alongside the blocked Read, which then returns.
	closed := make(chan struct{})
	stop := context.AfterFunc(g.base, func() {
		defer close(closed)
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
	})
	defer func() {
		if !stop() {
			<-closed
		}
	}()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), echoIdle)
		typ, msg, err := c.Read(ctx)
		if err == nil {
			err = c.Write(ctx, typ, msg)
		}
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) == -1 && g.base.Err() == nil {
				g.log.Debug("gateway: echo", "err", err)
			}
			return
		}
	}
}
