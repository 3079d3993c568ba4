package certs_test

import (
	"bufio"
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

// onePort is a test-local stand-in for the gateway's one port: it tells
// TLS (first byte 0x16) from plain HTTP, terminates TLS with the given
// config, closes acme-tls/1 connections after their handshake (the
// challenge is the handshake), and serves both sides with one http.Server.
type onePort struct {
	ln       net.Listener
	srv      *http.Server
	conns    chan net.Conn
	done     chan struct{}
	wg       sync.WaitGroup
	alpnSeen atomic.Int64 // acme-tls/1 handshakes completed
	httpSeen atomic.Int64 // HTTP-01 challenge requests
	tlsErrs  atomic.Int64
}

// listenOnePort binds the port (before certs.New, as the gateway must).
func listenOnePort(tb testing.TB) *onePort {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &onePort{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	tb.Cleanup(p.close)
	return p
}

func (p *onePort) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// serve starts serving with cfg (nil: TLS is refused) and handler wrapped
// by wrap (the challenge handler).
func (p *onePort) serve(cfg *tls.Config, wrap func(http.Handler) http.Handler) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echoHandler)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the one port")
	})
	inner := wrap(mux)
	p.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				p.httpSeen.Add(1)
			}
			inner.ServeHTTP(w, r)
		}),
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.srv.Serve(&chanListener{p: p})
	}()
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c, cfg)
			}()
		}
	}()
}

func (p *onePort) handle(c net.Conn, cfg *tls.Config) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	var out net.Conn = pc
	if first[0] == 0x16 {
		if cfg == nil {
			c.Close() // off mode: the gateway logs certs.ErrTLSDisabled
			return
		}
		tc := tls.Server(pc, cfg)
		if err := tc.Handshake(); err != nil {
			p.tlsErrs.Add(1)
			c.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "acme-tls/1" {
			p.alpnSeen.Add(1)
			tc.Close()
			return
		}
		out = tc
	}
	c.SetDeadline(time.Time{})
	select {
	case p.conns <- out:
	case <-p.done:
		c.Close()
	}
}

func (p *onePort) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.ln.Close()
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.srv.Shutdown(ctx)
		cancel()
		p.srv.Close()
	}
	p.wg.Wait()
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

type chanListener struct{ p *onePort }

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.p.conns:
		return c, nil
	case <-l.p.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.p.ln.Addr() }

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
