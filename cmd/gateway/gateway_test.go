package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/resume"
)

// client is one kind of client of the mixed test.
type client struct {
	name string
	run  func(ctx context.Context, g *testGateway, pool *x509.CertPool) error
}

func httpGet(version uint16, scheme string) func(context.Context, *testGateway, *x509.CertPool) error {
	return func(ctx context.Context, g *testGateway, pool *x509.CertPool) error {
		tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, "GET", g.url(scheme, "/healthz"), nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "ok\n" {
			return fmt.Errorf("body %q, %v", b, err)
		}
		if scheme == "https" && resp.TLS.Version != version {
			return fmt.Errorf("TLS version %x", resp.TLS.Version)
		}
		return nil
	}
}

// sessionEcho opens a resumable session on /stream (built-in echo) and
// does one round trip.
func sessionEcho(scheme string) func(context.Context, *testGateway, *x509.CertPool) error {
	return func(ctx context.Context, g *testGateway, pool *x509.CertPool) error {
		u := g.url(scheme, "/stream")
		if scheme == "tcp" || scheme == "tls" {
			u = g.url(scheme, "")
		}
		c, err := resume.Dial(ctx, u, dialOpts(pool, g.key.PublicString()))
		if err != nil {
			return err
		}
		defer c.CloseWithError(resume.CloseNormal, "")
		if err := echoRoundTrip(ctx, c, []byte("hello over "+scheme)); err != nil {
			return err
		}
		return c.Close()
	}
}

var mixedClients = []client{
	{"http", httpGet(0, "http")},
	{"tls1.2", httpGet(tls.VersionTLS12, "https")},
	{"tls1.3", httpGet(tls.VersionTLS13, "https")},
	{"ws", sessionEcho("ws")},
	{"wss", sessionEcho("wss")},
	{"tcp", sessionEcho("tcp")},
	{"tls", sessionEcho("tls")},
}

// TestHeavyMixedClients starts many clients of every kind at once against
// one port: Go HTTP, Go TLS 1.2 and 1.3, resumable sessions over ws://,
// wss://, tcp:// and tls://. Every one must be served.
func TestHeavyMixedClients(t *testing.T) {
	n := testenv.Scale(1000, 200)
	// A generous sniff deadline: under -race on a loaded machine a client can
	// take seconds to build its ClientHello (ML-KEM key generation), and a
	// TLS client silent past the deadline before any handshake completed
	// from its IP is, by design, sent to plain HTTP.
	g := newTestGateway(t, "-max-conns-per-ip=-1", "-max-conns=-1", "-max-sessions-per-ip=100000",
		"-tls-handshake-timeout=50s", "-sniff-timeout=50s", "-handshake-timeout=50s")
	pool := g.pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = mixedClients[i%len(mixedClients)].run(ctx, g, pool)
		})
	}
	close(start)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 10 {
				t.Errorf("client %d (%s): %v", i, mixedClients[i%len(mixedClients)].name, err)
			}
		}
	}
	_, body := get(t, g.url("http", "/metrics"), nil)
	if failed > 0 {
		t.Logf("server-side view:\n%s", metricLines(body, "rejections", "outcomes", "failures", "handshakes_total", "refused"))
		t.Fatalf("%d of %d clients failed", failed, n)
	}
	// Every kind shows in the metrics.
	for _, want := range []string{`dualgate_listener_connections_total{kind="tls",layer="tcp"}`, `dualgate_tls_handshakes_total{alpn="",version="TLS 1.2"}`,
		`dualgate_listener_connections_total{kind="http",layer="tls"}`, `dualgate_listener_connections_total{kind="stream",layer="tls"}`,
		`dualgate_listener_connections_total{kind="stream",layer="tcp"}`, "dualgate_wsbridge_bytes_total", "go_goroutines", "process_open_fds"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestMixedClientsOnce(t *testing.T) {
	g := newTestGateway(t, "-sniff-timeout=50s")
	pool := g.pool(t)
	for _, c := range mixedClients {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		if err := c.run(ctx, g, pool); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		cancel()
	}
}

// TestPlainWebSocketGets4012 checks that a WebSocket client that does not
// speak the protocol is told so, and that an unknown path is 404.
func TestPlainWebSocketGets4012(t *testing.T) {
	g := newTestGateway(t)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, g.url("ws", "/stream"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != 4012 {
		t.Fatalf("plain WebSocket on a route: %v, want close 4012", err)
	}
	if code, _ := get(t, g.url("http", "/nope"), nil); code != http.StatusNotFound {
		t.Fatalf("unknown path: %d, want 404", code)
	}
}

// TestHTTPEndpoints checks the demo page, the client bundle, health,
// readiness (503 while draining) and metrics on one port, over http and
// https.
func TestHTTPEndpoints(t *testing.T) {
	g := newTestGateway(t)
	pool := g.pool(t)
	for _, scheme := range []string{"http", "https"} {
		code, body := get(t, g.url(scheme, "/"), pool)
		if code != 200 || !strings.Contains(body, "<html") || !strings.Contains(body, g.key.PublicString()) {
			t.Errorf("%s /: %d, demo page with the server key expected:\n%.300s", scheme, code, body)
		}
		if code, body := get(t, g.url(scheme, "/dualgate.js"), pool); code != 200 || !strings.Contains(body, "connect") {
			t.Errorf("%s /dualgate.js: %d", scheme, code)
		}
		if code, body := get(t, g.url(scheme, "/healthz"), pool); code != 200 || body != "ok\n" {
			t.Errorf("%s /healthz: %d %q", scheme, code, body)
		}
		if code, body := get(t, g.url(scheme, "/readyz"), pool); code != 200 || body != "ready\n" {
			t.Errorf("%s /readyz: %d %q", scheme, code, body)
		}
	}
	_, metrics := get(t, g.url("http", "/metrics"), nil)
	for _, want := range []string{"dualgate_resume_", "dualgate_wsbridge_", "dualgate_certs_expiry_timestamp_seconds", "dualgate_listener_"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	g.draining.Store(true)
	if code, body := get(t, g.url("http", "/readyz"), nil); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}
}

// TestReadyzWaitsForACME: in ACME mode the gateway is not ready before
// every domain has a certificate (here the ACME server is unreachable).
func TestReadyzWaitsForACME(t *testing.T) {
	ln := listen(t, "tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	// certmagic may still release its lock files just after Close: the data
	// directory is removed with retries (certs/ would need Close to wait).
	dir, err := os.MkdirTemp("", "dualgate-acme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		waitFor(t, func() bool { return os.RemoveAll(dir) == nil }, "the ACME data directory removed")
	})
	g := newTestGateway(t, "-tls=acme", "-acme-domains=gw.dualgate.test", "-acme-ca=https://"+dead+"/directory", "-data-dir", dir)
	code, body := get(t, g.url("http", "/readyz"), nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no certificate yet for gw.dualgate.test") {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, _ := get(t, g.url("http", "/healthz"), nil); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
}

// TestOriginAllowlist: a browser page from another origin is refused unless
// -origin allows it; non-browser clients (no Origin header) always pass.
func TestOriginAllowlist(t *testing.T) {
	g := newTestGateway(t, "-origin", "app.example.com, *.trusted.example")
	ctx := testCtx(t)
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"https://app.example.com", true},
		{"https://x.trusted.example", true},
		{"https://evil.example", false},
	} {
		opts := g.dialOpts(t)
		opts.HTTPHeader = http.Header{}
		if tt.origin != "" {
			opts.HTTPHeader.Set("Origin", tt.origin)
		}
		c, err := resume.Dial(ctx, g.url("ws", "/stream"), opts)
		if (err == nil) != tt.ok {
			t.Errorf("origin %q: err = %v, want ok=%v", tt.origin, err, tt.ok)
		}
		if err == nil {
			c.Close()
		}
	}
}

// TestFrameModes checks which transports of the real gateway use
// plain-in-TLS frames (docs/protocol.md §5.7): unpinned sessions over wss://
// and tls:// do, pinned ones and plain ws:// and tcp:// seal, and
// -always-seal seals everything. Each session echoes a message, so a mode
// the two ends disagreed on would fail the round trip.
func TestFrameModes(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		plain int // server-side plain-in-TLS transports out of 8
	}{{nil, 2}, {[]string{"-always-seal"}, 0}} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			g := newTestGateway(t, append([]string{"-sniff-timeout=50s"}, tc.args...)...)
			pool := g.pool(t)
			for _, scheme := range []string{"ws", "wss", "tcp", "tls"} {
				for _, key := range []string{"", g.key.PublicString()} {
					u := g.url(scheme, "/stream")
					if scheme == "tcp" || scheme == "tls" {
						u = g.url(scheme, "")
					}
					c, err := resume.Dial(testCtx(t), u, dialOpts(pool, key))
					if err != nil {
						t.Fatalf("%s (pinned %v): %v", scheme, key != "", err)
					}
					if err := echoRoundTrip(testCtx(t), c, []byte("mode check over "+scheme)); err != nil {
						t.Errorf("%s (pinned %v): %v", scheme, key != "", err)
					}
					c.Close()
				}
			}
			_, body := get(t, g.url("http", "/metrics"), nil)
			for frames, want := range map[string]int{"plain_in_tls": tc.plain, "sealed": 8 - tc.plain} {
				line := fmt.Sprintf(`dualgate_resume_transports_total{frames=%q,side="server"} %d`, frames, want)
				if !strings.Contains(body, line+"\n") {
					t.Errorf("metrics lack %s; have:\n%s", line, metricLines(body, "transports_total"))
				}
			}
		})
	}
}
