package listener_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

const testWait = 30 * time.Second // generous: the machine is shared

type testListener struct {
	*listener.Listener
	reg  *prometheus.Registry
	addr string
}

func newTestListener(tb testing.TB, opts *listener.Options) *testListener {
	tb.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if opts == nil {
		opts = &listener.Options{}
	}
	o := *opts
	o.Registerer = reg
	if o.SniffTimeout == 0 {
		// Generous, so that a client delayed by the loaded machine is not
		// taken for a silent one; tests of the deadline set their own.
		o.SniffTimeout = testWait
	}
	l := listener.New(inner, &o)
	tb.Cleanup(func() { _ = l.Close() })
	return &testListener{Listener: l, reg: reg, addr: inner.Addr().String()}
}

func (tl *testListener) rejections(tb testing.TB, reason string) float64 {
	tb.Helper()
	return counterValue(tb, tl.reg, "dualgate_listener_rejections_total", "reason", reason)
}

func (tl *testListener) outcomes(tb testing.TB, outcome string) float64 {
	tb.Helper()
	return counterValue(tb, tl.reg, "dualgate_listener_sniff_outcomes_total", "outcome", outcome)
}

func counterValue(tb testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	tb.Helper()
	return testenv.MetricValue(tb, reg, name, label, value)
}

// waitFor polls cond until it holds or the test deadline passes.
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

func dial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	return dialFrom(tb, "", addr)
}

// dialFrom dials addr from the local IP from (empty: any). Every 127/8
// address is local on Linux, so tests use them as distinct clients.
func dialFrom(tb testing.TB, from, addr string) net.Conn {
	tb.Helper()
	d := net.Dialer{Timeout: testWait}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// accept accepts one connection of kind k within the test deadline.
func accept(tb testing.TB, l *listener.Listener, k sniff.Kind) *listener.Conn {
	tb.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.For(k).Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatalf("Accept(%s): %v", k, r.err)
		}
		tb.Cleanup(func() { _ = r.c.Close() })
		lc, ok := r.c.(*listener.Conn)
		if !ok {
			tb.Fatalf("Accept returned %T", r.c)
		}
		return lc
	case <-time.After(testWait):
		// Unblock the goroutine so that it does not leak.
		_ = l.Close()
		<-ch
		tb.Fatalf("Accept(%s): timed out", k)
		return nil
	}
}

// expectClosed checks that the server closes c without sending anything.
func expectClosed(tb testing.TB, c net.Conn) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		tb.Fatalf("reading from rejected connection: %v", err)
	}
	if len(b) != 0 {
		tb.Fatalf("rejected connection got %q", b)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

func readN(tb testing.TB, c net.Conn, n int) []byte {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		tb.Fatalf("read %d bytes: %v", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return b
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	tb.Cleanup(cancel)
	return ctx
}
