package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// helloServer is a real WebSocket server that, like the gateway, reads a
// "client hello", sends an 81-byte "server hello", reads a "CONFIRM" and
// then sends a 25-byte message and one 100-byte "DATA" message per
// transport.
func helloServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for _, step := range []struct {
			read  bool
			write int
		}{{true, 81}, {true, 25}, {false, 100}} {
			if step.read {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
			if c.Write(ctx, websocket.MessageBinary, make([]byte, step.write)) != nil {
				return
			}
		}
		c.Read(ctx) //nolint:errcheck // until the transport is dropped
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestFaultProxyMeasuresNextTransport(t *testing.T) {
	samples := make(chan resumeSample, 4)
	p, err := startFaultProxy(helloServer(t), func(s resumeSample) { samples <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws://"+p.addr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		// Client hello, server hello, CONFIRM, then ACK and DATA.
		for _, step := range []struct{ write, reads int }{{100, 1}, {41, 2}} {
			if err := c.Write(ctx, websocket.MessageBinary, make([]byte, step.write)); err != nil {
				t.Fatal(err)
			}
			for range step.reads {
				if _, _, err := c.Read(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		return c
	}
	first := dial()
	defer first.CloseNow()
	select {
	case s := <-samples:
		t.Fatalf("sample %+v without a kill", s)
	default:
	}
	if p.pending() {
		t.Fatal("pending before any kill")
	}
	if !p.kill(true) {
		t.Fatal("kill found no transport")
	}
	if !p.pending() {
		t.Fatal("not pending after a kill")
	}
	if _, _, err := first.Read(ctx); err == nil {
		t.Fatal("the killed transport still reads")
	}
	killed := time.Now()
	second := dial()
	defer second.CloseNow()
	var s resumeSample
	select {
	case s = <-samples:
	case <-ctx.Done():
		t.Fatal("no sample after the new transport's DATA")
	}
	if s.DialToData <= 0 || s.DialToData > time.Since(killed) || s.KillToData < s.DialToData || s.Attempts != 1 {
		t.Fatalf("sample %+v", s)
	}
	if !s.Attributed || s.Gateway <= 0 || s.ClientProxy <= 0 || s.Gateway+s.ClientProxy != s.DialToData ||
		s.DialToHello+s.HelloToData != s.DialToData {
		t.Fatalf("sample parts %+v", s)
	}
	if p.pending() {
		t.Fatal("still pending after the sample")
	}
	if st := p.Stats(); st.Accepted != 2 || st.DialErrors != 0 || st.Faults[faultproxy.Reset] != 1 || len(st.Faults) != 1 {
		t.Fatalf("stats %+v", st)
	}
	// No transport: kill reports false and arms nothing.
	second.CloseNow()
	deadline := time.Now().Add(20 * time.Second)
	for p.kill(false) {
		if time.Now().After(deadline) {
			t.Fatal("the closed transport stays in the proxy")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaultProxyTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p, err := startFaultProxy(dead, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // bound
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read through a proxy to nowhere: %v", err)
	}
	if st := p.Stats(); st.Accepted != 1 || st.DialErrors != 1 || st.Live != 0 {
		t.Fatalf("stats %+v", st)
	}
	if p.kill(true) || p.pending() {
		t.Fatal("a kill without a transport armed the measurement")
	}
}

// TestFaultProxyStallDropsGatewayBytes checks that a stall loses what the
// server sends (so that it must retransmit after a resume) before the kill.
func TestFaultProxyStallDropsGatewayBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		chunk := make([]byte, 1024)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck // bound
			if _, err := c.Write(chunk); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-served }()
	p, err := startFaultProxy(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.dial(ctx, "tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // bound
	if _, err := io.ReadFull(c, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	if !p.stallThenKill(50*time.Millisecond, false) {
		t.Fatal("no transport to kill")
	}
	// Everything the server sent after the stall began is lost: the
	// connection reads nothing more before the kill ends it.
	if n, _ := io.Copy(io.Discard, c); n != 0 {
		t.Fatalf("%d bytes delivered after the stall", n)
	}
	if p.dropped.Load() == 0 {
		t.Fatal("nothing was dropped during the stall")
	}
	if st := p.Stats(); st.Faults[faultproxy.Drop] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResumeTimesSplit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	inOrder := resumeTimes{accepted: ms(0), requestEnd: ms(1), responseStart: ms(3), clientHelloEnd: ms(4),
		serverHelloStart: ms(8), serverHelloEnd: ms(8), confirmEnd: ms(9), dataStart: ms(13), dataEnd: ms(14)}
	gw, rest, ok := inOrder.split()
	if !ok || gw != 10*time.Millisecond || rest != 4*time.Millisecond {
		t.Fatalf("in order: gateway %v, rest %v, %t; want 10ms, 4ms", gw, rest, ok)
	}
	if ex, ok := inOrder.exchanges(); !ok || ex != [3]time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond} {
		t.Fatalf("exchanges %v %t; want 2ms, 4ms, 4ms", ex, ok)
	}
	for _, c := range []struct {
		name string
		edit func(*resumeTimes)
	}{
		{"no CONFIRM seen", func(r *resumeTimes) { r.confirmEnd = time.Time{} }},
		{"no request seen", func(r *resumeTimes) { r.requestEnd = time.Time{} }},
		{"DATA before CONFIRM", func(r *resumeTimes) { r.dataStart = ms(8) }},
		{"client hello before the 101", func(r *resumeTimes) { r.clientHelloEnd = ms(2) }},
		{"request before the accept", func(r *resumeTimes) { r.accepted = ms(2) }},
		{"gateway time 0", func(r *resumeTimes) {
			r.responseStart, r.serverHelloStart, r.dataStart = r.requestEnd, r.clientHelloEnd, r.confirmEnd
		}},
	} {
		r := inOrder
		c.edit(&r)
		if gw, rest, ok := r.split(); ok {
			t.Errorf("%s: split %v + %v", c.name, gw, rest)
		}
	}
}

// TestLinkWatch feeds a resume's both directions to a tap in the order the
// proxy relays them, a byte at a time, and checks the sample and that each
// direction stops being watched once it has shown what is measured.
func TestLinkWatch(t *testing.T) {
	var samples []resumeSample
	p := &faultProxy{onSample: func(s resumeSample) { samples = append(samples, s) }, conns: map[*stallConn]struct{}{}}
	p.m = measurement{seq: 1, armed: true, killedAt: time.Now()}
	tap := p.tap(faultproxy.LinkInfo{ID: 1, Accepted: time.Now()})
	key := testMaskKey
	steps := []struct {
		d     faultproxy.Direction
		b     []byte
		ended bool // the tap stops watching this direction after it
	}{
		{faultproxy.ToTarget, []byte(upgradeRequest), false},
		{faultproxy.ToClient, []byte(upgradeResponse), false},
		{faultproxy.ToTarget, wsFrame(true, 2, make([]byte, 100), key), false}, // client hello
		{faultproxy.ToClient, wsFrame(true, 2, make([]byte, 81), nil), false},  // server hello
		{faultproxy.ToTarget, wsFrame(true, 2, make([]byte, 41), key), true},   // CONFIRM
		{faultproxy.ToClient, wsFrame(true, 2, make([]byte, 25), nil), false},  // ACK
		{faultproxy.ToClient, wsFrame(true, 2, make([]byte, 60), nil), true},   // DATA
	}
	for i, st := range steps {
		for j := range st.b {
			time.Sleep(10 * time.Microsecond) // distinct instants
			more := tap(st.d, st.b[j:j+1])
			if last := j == len(st.b)-1; more != !(last && st.ended) {
				t.Fatalf("step %d, byte %d: tap wants more: %t", i, j, more)
			}
		}
	}
	if len(samples) != 1 {
		t.Fatalf("%d samples", len(samples))
	}
	s := samples[0]
	if !s.Attributed || s.Gateway <= 0 || s.ClientProxy <= 0 || s.Gateway+s.ClientProxy != s.DialToData || p.pending() {
		t.Fatalf("sample %+v", s)
	}
	// A link accepted before the kill is not measured.
	p.m = measurement{seq: 2, armed: true, killedAt: time.Now(), killID: 2}
	tap = p.tap(faultproxy.LinkInfo{ID: 2, Accepted: time.Now()})
	for _, st := range steps {
		tap(st.d, st.b)
	}
	if len(samples) != 1 || !p.pending() {
		t.Fatalf("%d samples, pending %t", len(samples), p.pending())
	}
}
