package wsbridge_test

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

// TestHeavyConcurrentSessions keeps many sessions open at once over ws and
// wss, spread over tcp, unix, ws and built-in echo upstreams, and checks
// every echo.
func TestHeavyConcurrentSessions(t *testing.T) {
	n := testenv.Scale(1000, 100)
	tcp := startTCPEcho(t)
	unix := startUnixEcho(t)
	ws := startWSEcho(t)
	g := startGateway(t, []string{
		"/tcp=tcp://" + tcp,
		"/unix=unix://" + unix,
		"/ws=ws" + strings.TrimPrefix(ws.URL, "http") + "/echo",
		"/stream=builtin:echo",
	}, &resume.ServerOptions{MaxSessionsPerIP: 2 * n, HandshakeTimeout: testTimeout}, nil)
	routes := []string{"/tcp", "/unix", "/ws", "/stream"}
	ctx := testCtx(t)

	start := time.Now()
	conns := make([]*resume.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64) // bound concurrent handshakes, not sessions
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			opts := g.dialOpts()
			opts.HandshakeTimeout = testTimeout
			c, err := resume.Dial(ctx, g.url(i%2 == 1, routes[i%len(routes)]), opts)
			if err != nil {
				errs <- fmt.Errorf("session %d: dial: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// All sessions are bridged at the same time.
	waitFor(t, func() bool { return g.b.Active() == n }, "all sessions bridged")
	t.Logf("%d sessions bridged at once (%v to open them)", g.b.Active(), time.Since(start).Round(time.Millisecond))
	start = time.Now()

	errs = make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte(i)}, 1+i%5000)
			copy(msg, fmt.Sprintf("session %d", i))
			if err := c.WriteMessage(ctx, resume.MessageBinary, msg); err != nil {
				errs <- fmt.Errorf("session %d: write: %w", i, err)
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("session %d: read: %w", i, err)
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("session %d: echo mismatch", i)
				return
			}
			if err := c.Close(); err != nil {
				errs <- fmt.Errorf("session %d: close: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, func() bool { return g.b.Active() == 0 }, "all bridges ended")
	t.Logf("echo and clean close of all sessions: %v", time.Since(start).Round(time.Millisecond))
}

// TestHeavyTransferWithKills sends 64 MiB through the gateway to a TCP echo
// upstream and back, while a fault proxy kills the client's transports at
// random; both directions are checked byte for byte.
func TestHeavyTransferWithKills(t *testing.T) {
	size := testenv.Scale(64<<20, 8<<20)
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			if secure {
				size /= 2
			}
			// The upstream must see one connection, kept open across every
			// transport kill (the client's absences never reach it).
			var upstreamConns atomic.Int64
			eln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			serveListener(t, eln, func(c net.Conn) { upstreamConns.Add(1); echoHandler(c) })
			g := startGateway(t, []string{"/tcp=tcp://" + eln.Addr().String()}, nil, nil)
			target := g.ws.Listener.Addr().String()
			if secure {
				target = g.wss.Listener.Addr().String()
			}
			proxy := resumetest.NewProxy(t, target)
			opts := g.dialOpts()
			opts.BackoffMin, opts.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
			opts.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", proxy.Addr())
			}
			ctx := testCtx(t)
			c, err := resume.Dial(ctx, g.url(secure, "/tcp"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			seed := rand.Uint64()
			var received atomic.Int64
			writeErr := make(chan error, 1)
			go func() {
				_, err := streamtest.NewStream(seed, int64(size)).WriteTo(c)
				writeErr <- err
			}()

			stopKill := make(chan struct{})
			killerDone := make(chan struct{})
			go func() {
				defer close(killerDone)
				for {
					t := time.NewTimer(time.Duration(20+rand.IntN(150)) * time.Millisecond)
					select {
					case <-stopKill:
						t.Stop()
						return
					case <-t.C:
					}
					if received.Load() > 0 {
						proxy.KillRandom(0.7)
					}
				}
			}()

			// Read the echo and compare with the same pseudo-random stream;
			// Write splits differ from Read splits, so compare via a
			// regenerated stream of the writer's chunk sizes.
			want := streamtest.NewChecker(seed, int64(size))
			got := make([]byte, 64<<10)
			// Besides the random timer, kill every transport at 12 random
			// offsets, so resumption is exercised however fast the machine.
			killAt := make([]int64, 12)
			for i := range killAt {
				killAt[i] = int64(size) * int64(i+1) / 13
				killAt[i] += rand.Int64N(int64(size) / 26)
			}
			for received.Load() < int64(size) {
				if len(killAt) > 0 && received.Load() >= killAt[0] {
					proxy.KillAll()
					killAt = killAt[1:]
				}
				n, err := c.Read(got)
				if n > 0 {
					if off, ok := want.Check(got[:n]); !ok {
						t.Fatalf("mismatch at offset %d", off)
					}
					received.Add(int64(n))
				}
				if err != nil {
					t.Fatalf("read after %d bytes: %v", received.Load(), err)
				}
			}
			close(stopKill)
			<-killerDone
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			_, killed, _ := proxy.Stats()
			t.Logf("%d MiB echoed byte for byte across %d transport kills", size>>20, killed)
			if killed < 8 {
				t.Fatalf("only %d transports killed; the test did not exercise resumption", killed)
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

// waitFor polls cond (cheap, in-memory) until it holds or the test times out.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStalled waits until v stops growing (unchanged over several polls)
// and returns its value.
func waitStalled(t testing.TB, v func() float64, what string) float64 {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	last, same := v(), 0
	for same < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never stalled", what)
		}
		time.Sleep(50 * time.Millisecond)
		if cur := v(); cur == last && cur > 0 {
			same++
		} else {
			last, same = cur, 0
		}
	}
	return last
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHeavySlowPeersBoundedMemory shows backpressure end to end: clients
// pushing far more than a slow upstream takes (and an upstream pushing far
// more than a slow client reads) stall with bounded gateway memory, and
// lose nothing once the slow side catches up.
func TestHeavySlowPeersBoundedMemory(t *testing.T) {
	n := testenv.Scale(50, 4)
	perSession := 8 << 20 // well beyond a window plus the kernel's socket buffers
	t.Run("slow-upstream", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		results := make(chan int64, n)
		serveListener(t, ln, func(c net.Conn) {
			select { // the slow upstream: reads nothing until released
			case <-release:
			case <-time.After(testTimeout):
			}
			k, _ := io.Copy(io.Discard, c)
			results <- k
		})
		g := startGateway(t, []string{"/slow=tcp://" + ln.Addr().String()}, &resume.ServerOptions{MaxSessionsPerIP: 2 * n}, nil)
		ctx := testCtx(t)
		before := heapInUse()
		var wg sync.WaitGroup
		conns := make([]*resume.Conn, n)
		for i := range conns {
			c, err := resume.Dial(ctx, g.url(i%2 == 0, "/slow"), g.dialOpts())
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for sent := 0; sent < perSession; sent += len(buf) {
					if _, err := c.Write(buf); err != nil {
						t.Errorf("write: %v", err)
						return
					}
				}
				c.Close()
			}()
		}
		in := waitStalled(t, func() float64 { return metricValue(t, g.reg, "dualgate_wsbridge_bytes_total", "direction", "in") }, "client to upstream bytes")
		growth := int64(heapInUse()) - int64(before)
		t.Logf("slow upstream: %d sessions tried to push %d MiB; %.1f MiB crossed the bridge before it stalled; heap growth %.1f MiB (%.0f KiB per session, client and gateway together)",
			n, n*perSession>>20, in/(1<<20), float64(growth)/(1<<20), float64(growth)/1024/float64(n))
		if limit := int64(n) * 2 << 20; growth > limit {
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
			case <-time.After(testTimeout):
				t.Fatal("upstream did not finish")
			}
		}
	})
	t.Run("slow-client", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, n)
		serveListener(t, ln, func(c net.Conn) {
			buf := make([]byte, 32<<10)
			for sent := 0; sent < perSession; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					wrote <- err
					return
				}
			}
			wrote <- nil
		})
		g := startGateway(t, []string{"/fast=tcp://" + ln.Addr().String()}, &resume.ServerOptions{MaxSessionsPerIP: 2 * n}, nil)
		ctx := testCtx(t)
		before := heapInUse()
		conns := make([]*resume.Conn, n)
		for i := range conns {
			c, err := resume.Dial(ctx, g.url(i%2 == 0, "/fast"), g.dialOpts())
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		out := waitStalled(t, func() float64 { return metricValue(t, g.reg, "dualgate_wsbridge_bytes_total", "direction", "out") }, "upstream to client bytes")
		growth := int64(heapInUse()) - int64(before)
		t.Logf("slow client: %d sessions' upstreams tried to push %d MiB; %.1f MiB crossed the bridge before it stalled; heap growth %.1f MiB (%.0f KiB per session)",
			n, n*perSession>>20, out/(1<<20), float64(growth)/(1<<20), float64(growth)/1024/float64(n))
		if limit := int64(n) * 2 << 20; growth > limit {
			t.Fatalf("heap grew %d bytes for %d stalled sessions; want under %d", growth, n, limit)
		}
		if out >= float64(n*perSession) {
			t.Fatal("the upstream was never slowed down")
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := 0
				buf := make([]byte, 64<<10)
				for got < perSession {
					k, err := c.Read(buf)
					got += k
					if err != nil {
						t.Errorf("read after %d: %v", got, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for range n {
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range conns {
			_, _, err := c.ReadMessage(ctx)
			if resume.CloseStatus(err) != resume.CloseUpstreamClosed {
				t.Fatalf("after the upstream finished: %v, want 4011", err)
			}
			c.Close()
		}
	})
}
