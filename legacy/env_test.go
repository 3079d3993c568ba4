package legacy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/legacy/legacytest"
)

// testTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "legacy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// env is a legacy server reachable through a fault-injecting proxy over
// one kind of transport: "tcp", "tls" or "ws" (WebSocket binary frames).
type env struct {
	srv   *Server
	log   *testLog
	proxy *legacytest.Proxy
	dial  DialFunc
}

func newEnv(tb testing.TB, kind string, opts ServerOptions, popts *legacytest.Options) *env {
	tb.Helper()
	e := &env{}
	var target string
	switch kind {
	case "tcp", "tls":
		var serverTLS, clientTLS *tls.Config
		if kind == "tls" {
			serverTLS, clientTLS = testTLS(tb)
		}
		ts := startServer(tb, &opts, serverTLS)
		e.srv, e.log, target = ts.Server, ts.log, ts.addr
		p := mustProxy(tb, target, popts)
		e.proxy = p
		if clientTLS != nil {
			d := &tls.Dialer{Config: clientTLS}
			e.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", p.Addr()) }
		} else {
			var d net.Dialer
			e.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", p.Addr()) }
		}
	case "ws":
		e.log = &testLog{}
		if opts.Logger == nil {
			opts.Logger = e.log.logger()
		}
		srv, err := NewServer(&opts)
		if err != nil {
			tb.Fatal(err)
		}
		e.srv = srv
		hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			ap, _ := netip.ParseAddrPort(r.RemoteAddr)
			nc := WebSocketConn(r.Context(), ws)
			_ = srv.ServeConn(r.Context(), nc, Info{RemoteAddr: ap, Route: r.URL.Path})
		}))
		// WebSocket hides its socket from the server, so cap the kernel
		// send buffer at accept time as an operator would (docs/legacy.md).
		hs.Listener = sendBufferListener{hs.Listener, opts.ResendBuffer}
		hs.Start()
		tb.Cleanup(func() {
			_ = srv.Close()
			hs.Close()
		})
		target = hs.Listener.Addr().String()
		p := mustProxy(tb, target, popts)
		e.proxy = p
		e.dial = func(ctx context.Context) (net.Conn, error) {
			ws, _, err := websocket.Dial(ctx, "ws://"+p.Addr()+"/legacy", nil)
			if err != nil {
				return nil, err
			}
			return WebSocketConn(context.Background(), ws), nil
		}
	default:
		tb.Fatalf("unknown transport %q", kind)
	}
	return e
}

func mustProxy(tb testing.TB, target string, opts *legacytest.Options) *legacytest.Proxy {
	tb.Helper()
	p, err := legacytest.New(target, opts)
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after the server's cleanup, so it runs first: held
	// half-open sockets close before the server waits for its transports.
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// acceptN hands every accepted session to fn until the server closes.
func (e *env) serveEcho(tb testing.TB) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg syncWaitGroup
		defer wg.Wait()
		for {
			c, err := e.srv.Accept()
			if err != nil {
				return
			}
			echo(c, &wg.WaitGroup)
		}
	}()
	tb.Cleanup(func() {
		_ = e.srv.Close()
		<-done
	})
}

// sendBufferListener caps each accepted socket's send buffer.
type sendBufferListener struct {
	net.Listener
	resendBuffer int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		limitSendBuffer(c, max(l.resendBuffer, DefaultResendBuffer)/8)
	}
	return c, err
}
