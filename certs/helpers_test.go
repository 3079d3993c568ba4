package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/certs"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

// testTimeout bounds every wait in this package's tests; generous because
// the machine is shared and -race slows everything down.
const testTimeout = 2 * time.Minute

// logBuffer collects logs and prints them only if the test fails, so that
// goroutines logging after the test returned cannot panic in t.Log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger(tb testing.TB) (*slog.Logger, *logBuffer) {
	tb.Helper()
	lb := &logBuffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("logs:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// waitFor polls cond until it holds or testTimeout passes. It is for
// state that has no notification (a certificate appearing in a cache).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onePort is the gateway's one port built from the real parts: the
// sniffing listener (package listener) tells TLS from plain HTTP, tlsmux
// terminates TLS with the Manager's config (closing acme-tls/1 connections
// after their handshake), and one http.Server serves both sides, the plain
// side wrapped in the Manager's HTTP-01 handler. With a nil TLS config (off
// mode) TLS connections are closed with certs.ErrTLSDisabled logged, as
// the gateway does.
type onePort struct {
	ln       net.Listener
	l        *listener.Listener
	mux      *tlsmux.Mux
	srv      *http.Server
	reg      *prometheus.Registry // listener and tlsmux metrics
	wg       sync.WaitGroup
	httpSeen atomic.Int64 // HTTP-01 challenge requests on the plain side
	tlsOff   atomic.Int64 // TLS connections refused in off mode
	closed   bool
}

// listenOnePort binds the port (before certs.New, as the gateway must).
func listenOnePort(tb testing.TB) *onePort {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &onePort{ln: ln, reg: prometheus.NewRegistry()}
	tb.Cleanup(p.close)
	return p
}

func (p *onePort) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// alpnSeen returns the number of completed acme-tls/1 handshakes.
func (p *onePort) alpnSeen(tb testing.TB) int64 {
	return int64(metricValue(tb, p.reg, "dualgate_tls_handshakes_total", "alpn", "acme-tls/1"))
}

// serve starts serving with cfg (nil: TLS is refused) and the handler
// wrapped by wrap (the Manager's HTTPChallengeHandler).
func (p *onePort) serve(cfg *tls.Config, wrap func(http.Handler) http.Handler, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echoHandler)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the one port")
	})
	inner := wrap(mux)
	p.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       tlsmux.ConnContext,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Handler: tlsmux.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				p.httpSeen.Add(1)
			}
			inner.ServeHTTP(w, r)
		})),
	}
	p.l = listener.New(p.ln, &listener.Options{Logger: log, Registerer: p.reg})
	serve := func(l net.Listener) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.srv.Serve(l)
		}()
	}
	serve(p.l.For(sniff.KindHTTP))
	if cfg == nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tl := p.l.For(sniff.KindTLS)
			for {
				c, err := tl.Accept()
				if err != nil {
					return
				}
				p.tlsOff.Add(1)
				log.Info("refusing TLS connection", "remote", c.RemoteAddr(), "reason", certs.ErrTLSDisabled)
				c.Close()
			}
		}()
		return
	}
	p.mux = tlsmux.New(p.l.For(sniff.KindTLS), cfg, &tlsmux.Options{Logger: log, Registerer: p.reg})
	serve(p.mux.For(sniff.KindHTTP))
}

func (p *onePort) close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.srv == nil {
		p.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	p.srv.Shutdown(ctx)
	cancel()
	p.srv.Close()
	if p.mux != nil {
		p.mux.Close()
	}
	p.l.Close()
	p.wg.Wait()
}

// echoHandler is a WebSocket echo (one message back per message).
func echoHandler(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// wssEcho dials wss://name:port/echo through 127.0.0.1 with roots as the
// only trust anchors, echoes one message and returns the server's
// verified chain.
func wssEcho(tb testing.TB, name string, port int, roots *tls.Config) [][]*x509.Certificate {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var chains [][]*x509.Certificate
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		},
		TLSClientConfig: roots.Clone(),
	}
	tr.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		chains = cs.VerifiedChains
		if len(chains) == 0 {
			return errors.New("no verified chain")
		}
		return nil
	}
	defer tr.CloseIdleConnections()
	c, _, err := websocket.Dial(ctx, "wss://"+net.JoinHostPort(name, strconv.Itoa(port))+"/echo",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		tb.Fatalf("wss dial %s: %v", name, err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping "+name)); err != nil {
		tb.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if string(msg) != "ping "+name {
		tb.Fatalf("echo: got %q", msg)
	}
	c.Close(websocket.StatusNormalClosure, "")
	return chains
}
