package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/streamtest"
	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/resume/resumetest"
)

// upstreams are the real upstream services of the end-to-end tests.
type upstreams struct {
	tcp, unix, ws string
	sink          *sink
}

func startUpstreams(t testing.TB) *upstreams {
	return &upstreams{tcp: startTCPEcho(t), unix: startUnixEcho(t), ws: startWSEcho(t), sink: startSink(t)}
}

func (u *upstreams) args() []string {
	return []string{
		"-route", "/tcp=tcp://" + u.tcp,
		"-route", "/unix=unix://" + u.unix,
		"-route", "/ws=" + u.ws,
		"-route", "/sink=tcp://" + u.sink.addr,
		"-route", "/stream=builtin:echo",
		"-stream-route", "/tcp",
	}
}

// TestEndToEnd runs a session through the real gateway to every kind of
// upstream, over ws:// and wss:// on the same port, and over the tcp:// and
// tls:// byte stream (routed by -stream-route).
func TestEndToEnd(t *testing.T) {
	u := startUpstreams(t)
	g := newTestGateway(t, u.args()...)
	ctx := testCtx(t)
	type target struct{ scheme, path string }
	var targets []target
	for _, scheme := range []string{"ws", "wss"} {
		for _, path := range []string{"/tcp", "/unix", "/ws", "/stream"} {
			targets = append(targets, target{scheme, path})
		}
	}
	targets = append(targets, target{"tcp", ""}, target{"tls", ""})
	for _, tg := range targets {
		t.Run(tg.scheme+tg.path, func(t *testing.T) {
			c := g.dial(t, ctx, g.url(tg.scheme, tg.path))
			if got := c.State(); got != resume.StateConnected {
				t.Fatalf("state %v", got)
			}
			// Several messages; a ws upstream and the built-in echo keep
			// their boundaries, byte streams their bytes.
			for i := range 3 {
				msg := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
				if tg.path == "/ws" || tg.path == "/stream" {
					if err := c.WriteMessage(ctx, resume.MessageBinary, msg); err != nil {
						t.Fatal(err)
					}
					typ, got, err := c.ReadMessage(ctx)
					if err != nil || typ != resume.MessageBinary || !bytes.Equal(got, msg) {
						t.Fatalf("message %d: type %v, %d bytes, %v", i, typ, len(got), err)
					}
					continue
				}
				if err := echoRoundTrip(ctx, c, msg); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatalf("clean close: %v", err)
			}
		})
	}
	t.Run("sink", func(t *testing.T) {
		c := g.dial(t, ctx, g.url("wss", "/sink"))
		data := make([]byte, 3<<20)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case i := <-u.sink.done:
			if got := u.sink.bytes(i); !bytes.Equal(got, data) {
				t.Fatalf("sink got %d bytes, want the %d sent", len(got), len(data))
			}
		case <-time.After(testWait):
			t.Fatal("the sink's upstream connection was not closed after the client closed")
		}
	})
}

// TestUpstreamDown checks that a session whose upstream cannot be dialled
// is closed with 4010 and a reason.
func TestUpstreamDown(t *testing.T) {
	ln := listen(t, "tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	g := newTestGateway(t, "-route", "/down=tcp://"+dead, "-stream-route", "/down")
	ctx := testCtx(t)
	for _, scheme := range []string{"ws", "wss", "tcp"} {
		u := g.url(scheme, "/down")
		if scheme == "tcp" {
			u = g.url(scheme, "")
		}
		c, err := resume.Dial(ctx, u, g.dialOpts(t))
		if err != nil {
			t.Fatalf("%s: dial: %v", scheme, err)
		}
		c.SetReadDeadline(time.Now().Add(testWait))
		_, err = c.Read(make([]byte, 1))
		var ce *resume.CloseError
		if resume.CloseStatus(err) != resume.CloseUpstreamUnreachable || !errorAs(err, &ce) || ce.Reason == "" {
			t.Fatalf("%s: read = %v, want close 4010 with a reason", scheme, err)
		}
		if strings.Contains(ce.Reason, dead) {
			t.Errorf("the reason %q reveals the upstream address", ce.Reason)
		}
		t.Logf("%s: %v", scheme, err)
	}
	_, m := get(t, g.url("http", "/metrics"), nil)
	if !strings.Contains(m, "dualgate_wsbridge_upstream_dial_errors_total") {
		t.Error("metrics lack dualgate_wsbridge_upstream_dial_errors_total")
	}
}

// TestUpstreamClosesMidStream checks that an upstream ending mid-stream
// reaches the client after what it sent, as 4011.
func TestUpstreamClosesMidStream(t *testing.T) {
	ln := listen(t, "tcp", "127.0.0.1:0")
	serveListener(t, ln, func(c net.Conn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write([]byte("bye after " + string(buf)))
		// return: serveListener closes the connection
	})
	g := newTestGateway(t, "-route", "/closing=tcp://"+ln.Addr().String())
	ctx := testCtx(t)
	for _, scheme := range []string{"ws", "wss"} {
		c := g.dial(t, ctx, g.url(scheme, "/closing"))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(testWait))
		got, err := io.ReadAll(c)
		if string(got) != "bye after hello" {
			t.Fatalf("%s: got %q before the close", scheme, got)
		}
		if resume.CloseStatus(err) != resume.CloseUpstreamClosed {
			t.Fatalf("%s: read = %v, want close 4011", scheme, err)
		}
		t.Logf("%s: %v", scheme, err)
	}
}

func errorAs(err error, target **resume.CloseError) bool {
	for err != nil {
		if ce, ok := err.(*resume.CloseError); ok {
			*target = ce
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestHeavyConcurrentSessions holds many sessions open at once through the
// gateway, over ws, wss, tcp and tls, to tcp, unix, ws and built-in echo
// upstreams, and checks every echo.
func TestHeavyConcurrentSessions(t *testing.T) {
	n := testenv.Scale(1000, 200)
	u := startUpstreams(t)
	g := newTestGateway(t, append(u.args(), "-max-sessions-per-ip=100000", "-max-conns-per-ip=-1", "-max-conns=-1",
		"-sniff-timeout=50s", "-tls-handshake-timeout=50s", "-handshake-timeout=50s")...)
	ctx := testCtx(t)
	pool, key := g.pool(t), g.key.PublicString()
	urls := []string{g.url("ws", "/tcp"), g.url("wss", "/unix"), g.url("ws", "/ws"), g.url("wss", "/stream"),
		g.url("tcp", ""), g.url("tls", ""), g.url("wss", "/tcp"), g.url("ws", "/unix")}
	start := time.Now()
	conns := make([]*resume.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // bound concurrent handshakes, not sessions
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := resume.Dial(ctx, urls[i%len(urls)], dialOpts(pool, key))
			if err != nil {
				errs <- fmt.Errorf("session %d (%s): dial: %w", i, urls[i%len(urls)], err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseWithError(resume.CloseNormal, "")
			}
		}
	}()
	if t.Failed() {
		t.FailNow()
	}
	waitFor(t, func() bool { return g.bridger.Active() == n }, "all sessions bridged at once")
	t.Logf("%d sessions bridged at once (%v to open them)", g.bridger.Active(), time.Since(start).Round(time.Millisecond))
	errs = make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte(i)}, 1+i%4000)
			copy(msg, fmt.Sprintf("session %d", i))
			if err := echoRoundTrip(ctx, c, msg); err != nil {
				errs <- fmt.Errorf("session %d (%s): %w", i, urls[i%len(urls)], err)
				return
			}
			if err := c.Close(); err != nil {
				errs <- fmt.Errorf("session %d: close: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, func() bool { return g.bridger.Active() == 0 }, "all bridges ended")
}

// TestHeavyTransferWithKills sends 64 MiB through the gateway to a TCP echo
// upstream and back while a loopback fault proxy kills the client's
// transports at random; both directions are checked byte for byte and the
// upstream keeps one connection throughout.
func TestHeavyTransferWithKills(t *testing.T) {
	full := testenv.Scale(64<<20, 8<<20)
	for _, scheme := range []string{"ws", "wss", "tls"} {
		t.Run(scheme, func(t *testing.T) {
			size := full
			if scheme != "ws" && testenv.RaceEnabled {
				size /= 2 // the encrypted carriers are slower under -race
			}
			var upstreamConns atomic.Int64
			eln := listen(t, "tcp", "127.0.0.1:0")
			serveListener(t, eln, func(c net.Conn) { upstreamConns.Add(1); echoConn(c) })
			g := newTestGateway(t, "-route", "/tcp=tcp://"+eln.Addr().String(), "-stream-route", "/tcp", "-sniff-timeout=50s")
			proxy := resumetest.NewProxy(t, g.addr().String())
			opts := g.dialOpts(t)
			opts.BackoffMin, opts.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
			opts.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", proxy.Addr())
			}
			ctx := testCtx(t)
			u := g.url(scheme, "/tcp")
			if scheme == "tls" {
				u = g.url(scheme, "")
			}
			c, err := resume.Dial(ctx, u, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseWithError(resume.CloseNormal, "")
			seed := rand.Uint64()
			writeErr := make(chan error, 1)
			go func() {
				_, err := streamtest.NewStream(seed, int64(size)).WriteTo(c)
				writeErr <- err
			}()
			want := streamtest.NewChecker(seed, int64(size))
			got := make([]byte, 64<<10)
			killAt := make([]int64, 12)
			for i := range killAt {
				killAt[i] = int64(size)*int64(i+1)/13 + rand.Int64N(int64(size)/26)
			}
			var received int64
			kills := 0
			for received < int64(size) {
				if len(killAt) > 0 && received >= killAt[0] {
					kills += proxy.KillAll()
					killAt = killAt[1:]
				} else if rand.IntN(200) == 0 {
					kills += proxy.KillRandom(0.5)
				}
				c.SetReadDeadline(time.Now().Add(testWait))
				n, err := c.Read(got)
				if n > 0 {
					if off, ok := want.Check(got[:n]); !ok {
						t.Fatalf("mismatch at offset %d", off)
					}
					received += int64(n)
				}
				if err != nil {
					t.Fatalf("read after %d bytes: %v", received, err)
				}
			}
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d MiB echoed byte for byte across %d transport kills", scheme, size>>20, kills)
			if kills < 8 {
				t.Fatalf("only %d transports killed", kills)
			}
			if n := upstreamConns.Load(); n != 1 {
				t.Fatalf("upstream saw %d connections, want 1 for the whole session", n)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("clean close: %v", err)
			}
		})
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSlowUpstreamBoundedMemory: clients push far more than an upstream
// that does not read takes; the gateway's memory stays bounded by the
// session windows, and nothing is lost once the upstream reads.
func TestSlowUpstreamBoundedMemory(t *testing.T) {
	n := testenv.Scale(50, 10)
	perSession := 8 << 20
	release := make(chan struct{})
	results := make(chan int64, n)
	ln := listen(t, "tcp", "127.0.0.1:0")
	serveListener(t, ln, func(c net.Conn) {
		select { // the slow upstream: reads nothing until released
		case <-release:
		case <-time.After(2 * testWait):
		}
		k, _ := io.Copy(io.Discard, c)
		results <- k
	})
	g := newTestGateway(t, "-route", "/slow=tcp://"+ln.Addr().String())
	ctx := testCtx(t)
	before := heapAlloc()
	var wg sync.WaitGroup
	for i := range n {
		c := g.dial(t, ctx, g.url([]string{"ws", "wss"}[i%2], "/slow"))
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for sent := 0; sent < perSession; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	// Wait until the bytes crossing the bridge stop growing.
	in := func() float64 {
		_, m := get(t, g.url("http", "/metrics"), nil)
		return sumMetric(m, "dualgate_wsbridge_bytes_total", `direction="in"`)
	}
	last, same := in(), 0
	for deadline := time.Now().Add(testWait); same < 10; {
		if time.Now().After(deadline) {
			t.Fatal("the bridge never stalled")
		}
		time.Sleep(50 * time.Millisecond)
		if cur := in(); cur == last && cur > 0 {
			same++
		} else {
			last, same = cur, 0
		}
	}
	growth := int64(heapAlloc()) - int64(before)
	t.Logf("slow upstream: %d sessions tried to push %d MiB; %.1f MiB crossed the bridge before it stalled; heap growth %.1f MiB (%.0f KiB per session, clients and gateway in one process)",
		n, n*perSession>>20, last/(1<<20), float64(growth)/(1<<20), float64(growth)/1024/float64(n))
	if limit := int64(n) * 3 << 20; growth > limit {
		t.Fatalf("heap grew %d bytes for %d stalled sessions; want under %d", growth, n, limit)
	}
	close(release)
	wg.Wait()
	for range n {
		select {
		case k := <-results:
			if k != int64(perSession) {
				t.Fatalf("upstream got %d bytes, want %d", k, perSession)
			}
		case <-time.After(testWait):
			t.Fatal("upstream did not get everything")
		}
	}
}

// sumMetric sums the samples of metric name whose labels contain sub.
func sumMetric(body, name, sub string) float64 {
	var sum float64
	for line := range strings.SplitSeq(body, "\n") {
		if !(strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ")) || !strings.Contains(line, sub) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}
