package tlsmux_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/listener/listenertest"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

const testWait = 30 * time.Second

// stack is the one-port stack: sniffing listener, TLS mux and one HTTP
// server over both the plain and the decrypted HTTP kinds.
type stack struct {
	l     *listener.Listener
	mux   *tlsmux.Mux
	reg   *prometheus.Registry
	cache *sniff.IPCache
	addr  string
}

type stackOptions struct {
	sniffTimeout     time.Duration
	handshakeTimeout time.Duration
	kinds            []sniff.Kind
}

func newStack(tb testing.TB, so stackOptions) *stack {
	tb.Helper()
	if so.sniffTimeout == 0 {
		so.sniffTimeout = testWait // a slow client is not a silent one
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &stack{reg: prometheus.NewRegistry(), cache: sniff.NewIPCache(1024, time.Minute), addr: inner.Addr().String()}
	s.l = listener.New(inner, &listener.Options{Registerer: s.reg, IPCache: s.cache, SniffTimeout: so.sniffTimeout, MaxConnsPerIP: -1})
	cfg := listenertest.ServerConfig(tb)
	cfg.NextProtos = nil // tlsmux adds http/1.1 and acme-tls/1
	s.mux = tlsmux.New(s.l.For(sniff.KindTLS), cfg, &tlsmux.Options{
		Registerer: s.reg, IPCache: s.cache, HandshakeTimeout: so.handshakeTimeout, Kinds: so.kinds,
	})
	srv := &http.Server{Handler: tlsmux.Handler(testHandler()), ConnContext: tlsmux.ConnContext, ReadHeaderTimeout: testWait}
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(s.l.For(sniff.KindHTTP)); done <- struct{}{} }()
	go func() { _ = srv.Serve(s.mux.For(sniff.KindHTTP)); done <- struct{}{} }()
	tb.Cleanup(func() {
		_ = srv.Close()
		_ = s.mux.Close()
		_ = s.l.Close()
		<-done
		<-done
	})
	return s
}

// testHandler answers /tls with whether r.TLS is set and echoes WebSocket
// messages on /echo, prefixed with the scheme the handler saw.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/tls", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			fmt.Fprint(w, "plain")
			return
		}
		fmt.Fprintf(w, "tls %s", tls.VersionName(r.TLS.Version))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		scheme := "ws"
		if r.TLS != nil && r.TLS.HandshakeComplete {
			scheme = "wss"
		}
		ctx, cancel := context.WithTimeout(r.Context(), testWait)
		defer cancel()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, append([]byte(scheme+":"), b...)); err != nil {
				return
			}
		}
	})
	return mux
}

func (s *stack) counter(tb testing.TB, name, label, value string) float64 {
	tb.Helper()
	return testenv.MetricValue(tb, s.reg, name, label, value)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httpClient(tb testing.TB, version uint16, localIP string) *http.Client {
	d := &net.Dialer{Timeout: testWait}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: listenertest.ClientConfig(tb, version), DisableKeepAlives: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testWait}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	tb.Cleanup(cancel)
	return ctx
}
