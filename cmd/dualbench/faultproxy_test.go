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

// helloServer is a real WebSocket server that, like the gateway, first
// sends an 81-byte "server hello", then a 25-byte message and then one
// 100-byte "DATA" message per transport.
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
		for _, n := range []int{81, 25, 100} {
			if c.Write(ctx, websocket.MessageBinary, make([]byte, n)) != nil {
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
		for range 3 {
			if _, _, err := c.Read(ctx); err != nil {
				t.Fatal(err)
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
