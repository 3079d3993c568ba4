package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/legacy/legacytest"
)

// legacyFaultSets are the fault mixes of the two proxies in front of each
// carrier: one that drops links (FIN or RST, both ends hear it) and one
// that leaves them silent (half-open or black-holed, the gateway hears
// nothing and the client must notice and come back on a new link). Every
// session goes through one of them, so both kinds are certain to strike.
var legacyFaultSets = []struct {
	name   string
	faults []legacytest.Fault
}{
	{"drop", []legacytest.Fault{legacytest.Drop, legacytest.Reset}},
	{"silent", []legacytest.Fault{legacytest.HalfOpen, legacytest.Blackhole}},
}

// TestHeavyLegacyChaosThroughGateway runs legacy snet sessions through the
// real in-process gateway (-legacy, encrypted and plain, with
// -legacy-ws-path) to a TCP echo upstream, over raw TCP, TLS and WebSocket
// binary frames, each through fault proxies that keep dropping, resetting,
// half-opening and black-holing the client's transports. Every echoed byte
// is checked both ways; the faults, the gateway's reconnect handshakes, one
// session and one upstream connection per client, and the exact byte counts
// on the bridge are asserted.
func TestHeavyLegacyChaosThroughGateway(t *testing.T) {
	perProxy := testenv.Scale(2, 1) // sessions per proxy, two proxies per carrier
	total := testenv.Scale(2<<20, 1<<20)
	const (
		window   = 256 << 10 // unanswered bytes, well within the 1 MiB resend buffer
		minBytes = 64 << 10  // fault budget per link (both directions)
	)
	// Below 2*total, so each session's first link is certain to fail.
	maxBytes := testenv.Scale(1<<20, 512<<10)
	carriers := []string{"tcp", "tls", "ws"}
	for _, encrypt := range []bool{true, false} {
		mode := map[bool]string{true: "encrypted", false: "plain"}[encrypt]
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			var upstreamConns atomic.Int64
			eln := listen(t, "tcp", "127.0.0.1:0")
			serveListener(t, eln, func(c net.Conn) { upstreamConns.Add(1); echoConn(c) })
			g := newTestGateway(t, "-legacy", fmt.Sprintf("-legacy-encrypt=%v", encrypt),
				"-route", "/legacy=tcp://"+eln.Addr().String(), "-legacy-ws-path", "/snet",
				"-legacy-reconnect-wait=60s", "-sniff-timeout=50s")
			pool := g.pool(t)
			t.Run("carriers", func(t *testing.T) {
				for ci, carrier := range carriers {
					t.Run(carrier, func(t *testing.T) {
						t.Parallel()
						legacyChaosCarrier(t, g, carrier, pool, encrypt,
							uint64(ci+1)*100+uint64(len(mode)), perProxy, total, window, minBytes, maxBytes)
					})
				}
			})
			if t.Failed() {
				return
			}
			sessions := len(carriers) * len(legacyFaultSets) * perProxy
			_, m := get(t, g.url("http", "/metrics"), nil)
			reconnects := sumMetric(m, "dualgate_legacy_handshakes_total", `result="ok",type="reconnect"`)
			if reconnects == 0 {
				t.Errorf("the gateway counted no legacy reconnect:\n%s", metricLines(m, "legacy"))
			}
			if v := sumMetric(m, "dualgate_legacy_sessions_total", ""); v != float64(sessions) {
				t.Errorf("dualgate_legacy_sessions_total = %v, want %d (a reconnect must not open a session)", v, sessions)
			}
			if n := upstreamConns.Load(); n != int64(sessions) {
				t.Errorf("%d upstream connections, want %d (one per session, kept across reconnects)", n, sessions)
			}
			// Every byte reached the upstream and came back exactly once.
			want := float64(sessions * total)
			for _, dir := range []string{"in", "out"} {
				sub := `direction="` + dir + `",route="/legacy"`
				waitFor(t, func() bool {
					_, m := get(t, g.url("http", "/metrics"), nil)
					return sumMetric(m, "dualgate_wsbridge_bytes_total", sub) >= want
				}, "bridge bytes "+dir)
				_, m := get(t, g.url("http", "/metrics"), nil)
				if v := sumMetric(m, "dualgate_wsbridge_bytes_total", sub); v != want {
					t.Errorf("bridge bytes %s = %v, want exactly %v", dir, v, want)
				}
			}
			t.Logf("%s: %d sessions × %d bytes each way, gateway reconnect handshakes %v, resent %v bytes, %v",
				mode, sessions, total, reconnects, sumMetric(m, "dualgate_legacy_resent_bytes_total", ""),
				time.Since(start).Round(time.Millisecond))
		})
	}
}

// legacyChaosCarrier runs perProxy sessions through each of two fault
// proxies in front of the gateway at addr, over one carrier, and checks the
// echo and that each proxy's faults struck.
func legacyChaosCarrier(t *testing.T, g *testGateway, carrier string, pool *x509.CertPool, encrypt bool,
	seed uint64, perProxy, total, window, minBytes, maxBytes int) {
	addr := g.addr().String()
	type session struct {
		c     *legacy.Conn
		proxy *legacytest.Proxy
	}
	var sessions []session
	proxies := make([]*legacytest.Proxy, len(legacyFaultSets))
	for i, set := range legacyFaultSets {
		p, err := legacytest.New(addr, &legacytest.Options{
			MinBytes: minBytes, MaxBytes: maxBytes, Faults: set.faults, Seed: seed + uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		// Registered after the gateway's cleanup, so it runs first: the held
		// half-open sockets close before the gateway drains.
		t.Cleanup(func() { _ = p.Close() })
		proxies[i] = p
		dial := legacyCarrierDial(carrier, p.Addr(), pool)
		for range perProxy {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			c, err := legacy.DialWith(ctx, dial, &legacy.DialOptions{
				Encrypt:          encrypt,
				HandshakeTimeout: 10 * time.Second,
				ReconnectWait:    testWait,
				RetryInterval:    5 * time.Millisecond,
				MaxRetryInterval: 100 * time.Millisecond,
				ReadIdleTimeout:  500 * time.Millisecond, // how a client notices a silent link
			})
			cancel()
			if err != nil {
				t.Fatalf("%s/%s: dial: %v", carrier, set.name, err)
			}
			t.Cleanup(func() { _ = c.Close() })
			_ = c.SetDeadline(time.Now().Add(3 * testWait))
			sessions = append(sessions, session{c, p})
		}
	}
	for _, p := range proxies {
		p.SetChaos(true)
	}
	errs := make(chan error, len(sessions))
	for i, s := range sessions {
		go func() {
			if err := legacytest.EchoExchange(s.c, seed*1000+uint64(i), total, window); err != nil {
				errs <- fmt.Errorf("%s session %d (id %d): %w", carrier, i, s.c.ID(), err)
				return
			}
			errs <- nil
		}()
	}
	failed := false
	for range sessions {
		if err := <-errs; err != nil {
			t.Error(err)
			failed = true
		}
	}
	if failed {
		_, m := get(t, g.url("http", "/metrics"), nil)
		t.Logf("gateway legacy metrics:\n%s\ngateway legacy log (tail):\n%s",
			metricLines(m, "dualgate_legacy_"), legacyLogTail(g.log.String(), 40))
	}
	for _, p := range proxies {
		p.SetChaos(false)
	}
	for _, s := range sessions {
		_ = s.c.Close()
	}
	for i, set := range legacyFaultSets {
		counts := proxies[i].Counts()
		n := 0
		for _, f := range set.faults {
			n += counts[f]
		}
		if n == 0 {
			t.Errorf("%s/%s: no fault injected: %v", carrier, set.name, counts)
		}
		t.Logf("%s/%s: %d sessions × %d bytes, faults %v", carrier, set.name, perProxy, total, counts)
	}
}

// legacyLogTail returns the last n lines of the gateway log that mention
// the legacy protocol, to explain a failure.
func legacyLogTail(log string, n int) string {
	var lines []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "legacy") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// legacyCarrierDial returns a legacy transport dialer to a proxy in front
// of the gateway: raw TCP, TLS trusting the gateway's dev CA, or WebSocket
// binary frames on the -legacy-ws-path route.
func legacyCarrierDial(carrier, addr string, pool *x509.CertPool) legacy.DialFunc {
	switch carrier {
	case "tls":
		d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	case "ws":
		return func(ctx context.Context) (net.Conn, error) {
			ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/snet", nil)
			if err != nil {
				return nil, err
			}
			return legacy.WebSocketConn(context.Background(), ws), nil
		}
	default:
		var d net.Dialer
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
}
