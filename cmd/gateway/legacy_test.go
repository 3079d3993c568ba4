package main

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/legacy/legacytest"
)

// TestLegacyThroughGateway bridges legacy snet sessions through the
// gateway's one port (raw TCP, inside TLS, and in WebSocket binary frames
// on -legacy-ws-path) to a TCP echo upstream, encrypted and plain.
func TestLegacyThroughGateway(t *testing.T) {
	echo := startTCPEcho(t)
	for _, encrypt := range []bool{true, false} {
		name := "encrypted"
		if !encrypt {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			g := newTestGateway(t, "-legacy", "-legacy-encrypt="+map[bool]string{true: "true", false: "false"}[encrypt],
				"-route", "/stream=builtin:echo", "-route", "/legacy=tcp://"+echo, "-legacy-route", "/legacy", "-legacy-ws-path", "/snet",
				"-sniff-timeout=50s")
			if !strings.Contains(g.log.String(), "weak cryptography") {
				t.Error("no weak-cryptography warning logged")
			}
			pool := g.pool(t)
			addr := g.addr().String()
			dials := map[string]legacy.DialFunc{
				"tcp": func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "tcp", addr)
				},
				"tls": func(ctx context.Context) (net.Conn, error) {
					d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
					return d.DialContext(ctx, "tcp", addr)
				},
				"ws": func(ctx context.Context) (net.Conn, error) {
					c, _, err := websocket.Dial(ctx, "ws://"+addr+"/snet", nil)
					if err != nil {
						return nil, err
					}
					return legacy.WebSocketConn(context.Background(), c), nil
				},
			}
			for _, carrier := range []string{"tcp", "tls", "ws"} {
				ctx, cancel := context.WithTimeout(context.Background(), testWait)
				c, err := legacy.DialWith(ctx, dials[carrier], &legacy.DialOptions{Encrypt: encrypt, HandshakeTimeout: testWait})
				cancel()
				if err != nil {
					t.Fatalf("%s: dial: %v", carrier, err)
				}
				c.SetDeadline(time.Now().Add(testWait))
				if err := legacytest.EchoExchange(c, uint64(len(carrier)), 1<<20, 128<<10); err != nil {
					t.Fatalf("%s: echo: %v", carrier, err)
				}
				c.Close()
			}
			_, m := get(t, g.url("http", "/metrics"), nil)
			if v := sumMetric(m, "dualgate_legacy_sessions_total", ""); v < 3 {
				t.Errorf("dualgate_legacy_sessions_total = %v, want 3", v)
			}
			if v := sumMetric(m, "dualgate_wsbridge_bytes_total", `route="/legacy"`); v < 6<<20-1 {
				t.Errorf("bytes bridged on /legacy = %v, want 6 MiB", v)
			}
		})
	}
}

// TestLegacyRefusedWhenOff checks that without -legacy a legacy client is
// refused (raw and inside TLS), with the reason logged and counted, and
// that the gateway serves other clients meanwhile.
func TestLegacyRefusedWhenOff(t *testing.T) {
	g := newTestGateway(t, "-sniff-timeout=50s")
	pool := g.pool(t)
	addr := g.addr().String()
	for _, secure := range []bool{false, true} {
		dial := func(ctx context.Context) (net.Conn, error) {
			if secure {
				d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
				return d.DialContext(ctx, "tcp", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		c, err := legacy.DialWith(ctx, dial, &legacy.DialOptions{Encrypt: true, HandshakeTimeout: testWait})
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("secure=%v: a legacy session was accepted without -legacy", secure)
		}
		t.Logf("secure=%v: refused: %v", secure, err)
	}
	_, m := get(t, g.url("http", "/metrics"), nil)
	for _, layer := range []string{"tcp", "tls"} {
		if v := sumMetric(m, "dualgate_listener_rejections_total", `layer="`+layer+`",reason="kind-disabled"`); v < 1 {
			t.Errorf("rejections for kind-disabled (%s) = %v:\n%s", layer, v, metricLines(m, "rejections"))
		}
	}
	waitFor(t, func() bool { return strings.Count(g.log.String(), "kind-disabled") >= 2 }, "the refusals logged with their reason")
	if code, _ := get(t, g.url("https", "/healthz"), pool); code != 200 {
		t.Fatalf("healthz after the refusals: %d", code)
	}
}

// TestDrainWithLegacyAndModernSessions drains an in-process gateway with a
// live modern session and a live legacy session: both end, the shutdown
// returns without error well within its deadline, and (TestMain) no
// goroutine is left behind.
func TestDrainWithLegacyAndModernSessions(t *testing.T) {
	echo := startTCPEcho(t)
	g := newTestGateway(t, "-legacy", "-route", "/stream=tcp://"+echo, "-legacy-reconnect-wait=5s")
	ctx := testCtx(t)
	modern := g.dial(t, ctx, g.url("wss", "/stream"))
	if err := echoRoundTrip(ctx, modern, []byte("modern")); err != nil {
		t.Fatal(err)
	}
	lc, err := legacy.Dial(ctx, "tcp", g.addr().String(), &legacy.DialOptions{Encrypt: true, ReconnectWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	lc.SetDeadline(time.Now().Add(testWait))
	if err := legacytest.EchoExchange(lc, 1, 64<<10, 32<<10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return g.bridger.Active() == 2 }, "both sessions bridged")
	sctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := g.shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-g.served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	g.served = nil
	select {
	case <-modern.Done():
	case <-time.After(testWait):
		t.Fatal("the modern session did not end")
	}
	if code := resumeCloseStatus(modern.Err()); code != 1001 {
		t.Errorf("modern session ended with %v, want 1001", modern.Err())
	}
	if n := g.bridger.Active(); n != 0 {
		t.Errorf("%d bridges left", n)
	}
}
