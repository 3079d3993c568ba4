package wsbridge_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/streamtest"
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/resume/resumetest"
)

// TestEndToEndDrain drains the bridger while clients keep writing: every
// client is told 1001, every upstream receives an exact prefix of its
// client's stream, at least everything delivered before the drain, and is
// closed cleanly (FIN, not RST).
func TestEndToEndDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		data []byte
		err  error
	}
	results := make(chan got, 16)
	serveListener(t, ln, func(c net.Conn) {
		var buf bytes.Buffer
		_, err := io.Copy(&buf, c)
		results <- got{buf.Bytes(), err}
	})
	g := startGateway(t, []string{"/s=tcp://" + ln.Addr().String()}, nil, nil)
	ctx := testCtx(t)
	const n = 6
	streams := make([][]byte, n)
	conns := make([]*resume.Conn, n)
	for i := range conns {
		streams[i] = make([]byte, 4<<20)
		streamtest.Fill(rand.New(rand.NewPCG(uint64(i), 7)), streams[i])
		c, err := resume.Dial(ctx, g.url(i%2 == 0, "/s"), g.dialOpts())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	// Phase 1: 64 KiB each, delivered to the upstreams.
	const first = 64 << 10
	for i, c := range conns {
		if _, err := c.Write(streams[i][:first]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		return metricValue(t, g.reg, "dualgate_wsbridge_bytes_total", "direction", "in") == n*first
	}, "phase 1 delivered")
	// Phase 2: keep writing while the gateway drains.
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := first; off < len(streams[i]); off += 16 << 10 {
				if _, err := c.Write(streams[i][off : off+16<<10]); err != nil {
					return // the session was closed by the drain
				}
			}
		}()
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := g.b.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for _, c := range conns {
		_, _, err := c.ReadMessage(ctx)
		if resume.CloseStatus(err) != resume.CloseGoingAway {
			t.Fatalf("client saw %v, want 1001", err)
		}
	}
	wg.Wait()
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("upstream not closed cleanly: %v", r.err)
		}
		if len(r.data) < first {
			t.Fatalf("upstream got %d bytes, fewer than the %d delivered before the drain", len(r.data), first)
		}
		match := false
		for _, s := range streams {
			if bytes.Equal(s[:first], r.data[:first]) {
				match = bytes.Equal(s[:len(r.data)], r.data)
			}
		}
		if !match {
			t.Fatalf("upstream got %d bytes that are not a prefix of its client's stream", len(r.data))
		}
	}
}

// TestEndToEndDetachedTTL: while the client is away the upstream stays
// open; when the detached session expires, the upstream is closed cleanly.
func TestEndToEndDetachedTTL(t *testing.T) {
	addr, results := startTCPSink(t)
	g := startGateway(t, []string{"/s=tcp://" + addr}, &resume.ServerOptions{DetachedTTL: time.Second}, nil)
	proxy := resumetest.NewProxy(t, g.ws.Listener.Addr().String())
	opts := g.dialOpts()
	opts.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", proxy.Addr())
	}
	ctx := testCtx(t)
	c, err := resume.Dial(ctx, g.url(false, "/s"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("before the blip")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return metricValue(t, g.reg, "dualgate_wsbridge_bytes_total", "direction", "in") == float64(len("before the blip"))
	}, "bytes delivered")
	proxy.Close() // the client is gone for good: no transport, no resume
	select {
	case r := <-results:
		if r.err != nil || r.n != int64(len("before the blip")) {
			t.Fatalf("upstream got %d bytes, err %v", r.n, r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("upstream not closed after the detached TTL")
	}
	waitFor(t, func() bool { return g.b.Active() == 0 }, "bridge ended")
	if v := metricValue(t, g.reg, "dualgate_wsbridge_bridges_ended_total", "reason", "session_end"); v != 1 {
		t.Fatalf("ended{session_end} = %v", v)
	}
}

// TestDrainDetachedSessions drains sessions whose clients are away: each
// one's close exchange can only end by the close timeout, and the sessions
// wait for it side by side, not one after the other (which took n close
// timeouts and so missed Drain's deadline: Drain then fell back to Close).
func TestDrainDetachedSessions(t *testing.T) {
	addr, results := startTCPSink(t)
	const closeTimeout = time.Second
	g := startGateway(t, []string{"/s=tcp://" + addr}, &resume.ServerOptions{CloseTimeout: closeTimeout, DetachedTTL: time.Minute}, nil)
	proxy := resumetest.NewProxy(t, g.ws.Listener.Addr().String())
	opts := g.dialOpts()
	opts.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", proxy.Addr())
	}
	opts.CloseTimeout = 100 * time.Millisecond // the clients' own Close cannot complete either
	var detached atomic.Int32
	opts.OnStateChange = func(s resume.State) {
		if s == resume.StateDetached {
			detached.Add(1)
		}
	}
	ctx := testCtx(t)
	const n = 8
	for i := range n {
		c, err := resume.Dial(ctx, g.url(false, "/s"), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		return metricValue(t, g.reg, "dualgate_wsbridge_bytes_total", "direction", "in") == n
	}, "bytes delivered")
	proxy.Close() // every client is away: no transport, no resume
	waitFor(t, func() bool { return detached.Load() == n }, "clients detached")
	// n close timeouts one after the other would be 8 s.
	dctx, cancel := context.WithTimeout(ctx, n/2*closeTimeout)
	defer cancel()
	if err := g.b.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for range n {
		if r := <-results; r.err != nil || r.n != 1 {
			t.Fatalf("upstream got %d bytes, err %v", r.n, r.err)
		}
	}
}
