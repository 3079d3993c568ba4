package wsbridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dualgate/dualgate/wsbridge"
)

// streamRoundTrip writes data on client, half-closes, and expects it back
// followed by EOF.
func streamRoundTrip(t *testing.T, client net.Conn, data []byte) {
	t.Helper()
	client.SetDeadline(time.Now().Add(testTimeout))
	errc := make(chan error, 1)
	go func() {
		_, err := client.Write(data)
		if err == nil {
			err = client.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if werr := <-errc; werr != nil {
		t.Fatalf("write: %v", werr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(got), len(data))
	}
}

func TestBridgeStreamUpstreams(t *testing.T) {
	tcpAddr := startTCPEcho(t)
	unixPath := startUnixEcho(t)
	tests := []struct {
		name  string
		route string
	}{
		{"tcp", "/s=tcp://" + tcpAddr},
		{"unix", "/s=unix://" + unixPath},
		{"builtin-echo", "/s=builtin:echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, reg := newBridger(t, []string{tt.route}, nil)
			client, server := tcpPair(t)
			sess := newRouteSession(server, "/s")
			done := runBridge(t, b, sess)
			data := make([]byte, 1<<20)
			rand.Read(data)
			streamRoundTrip(t, client, data)
			if err := waitErr(t, done); err != nil {
				t.Fatalf("bridge: %v", err)
			}
			if code, _ := sess.closeStatus(t); code != wsbridge.CloseNormal {
				t.Fatalf("session closed with %d, want 1000 after a clean client close", code)
			}
			in := metricValue(t, reg, "dualgate_wsbridge_bytes_total", "route", "/s", "direction", "in")
			out := metricValue(t, reg, "dualgate_wsbridge_bytes_total", "route", "/s", "direction", "out")
			if in != float64(len(data)) || out != float64(len(data)) {
				t.Fatalf("bytes metrics in=%v out=%v, want %d", in, out, len(data))
			}
			if b.Active() != 0 {
				t.Fatalf("Active = %d after the bridge ended", b.Active())
			}
		})
	}
}

func TestBridgeMessagesKeepBoundaries(t *testing.T) {
	ws := startWSEcho(t)
	upURL := "ws" + strings.TrimPrefix(ws.URL, "http") + "/up"
	for _, route := range []string{"/m=" + upURL, "/m=builtin:echo"} {
		t.Run(route, func(t *testing.T) {
			b, _ := newBridger(t, []string{route}, nil)
			gw := startWSGateway(t, b)
			ctx := testCtx(t)
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/m", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			msgs := []struct {
				typ websocket.MessageType
				p   []byte
			}{
				{websocket.MessageText, []byte("hello")},
				{websocket.MessageBinary, []byte{0, 1, 2}},
				{websocket.MessageBinary, bytes.Repeat([]byte("x"), 200<<10)},
				{websocket.MessageText, []byte("ünïcode")},
				{websocket.MessageBinary, []byte{9}},
			}
			for _, m := range msgs {
				if err := c.Write(ctx, m.typ, m.p); err != nil {
					t.Fatal(err)
				}
			}
			for i, m := range msgs {
				typ, p, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if typ != m.typ || !bytes.Equal(p, m.p) {
					t.Fatalf("message %d: got %v/%d bytes, want %v/%d bytes", i, typ, len(p), m.typ, len(m.p))
				}
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("clean close: %v", err)
			}
		})
	}
}

func TestBridgeNoRoute(t *testing.T) {
	b, _ := newBridger(t, []string{"/a=builtin:echo"}, nil)
	_, server := tcpPair(t)
	sess := newRouteSession(server, "/nope")
	if err := waitErr(t, runBridge(t, b, sess)); err == nil {
		t.Fatal("want an error for a session without a route")
	}
	if code, reason := sess.closeStatus(t); code != wsbridge.CloseUpstreamUnreachable || !strings.Contains(reason, "no route") {
		t.Fatalf("closed with %d %q", code, reason)
	}
}

func TestBridgeUpstreamClosesMidStream(t *testing.T) {
	// The upstream sends a greeting and a 1 MiB body, then closes: the
	// client gets every byte, then 4011.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1<<20)
	rand.Read(body)
	serveListener(t, ln, func(c net.Conn) {
		c.Write([]byte("hello\n"))
		c.Write(body)
	})
	b, reg := newBridger(t, []string{"/u=tcp://" + ln.Addr().String()}, nil)
	client, server := tcpPair(t)
	sess := newRouteSession(server, "/u")
	done := runBridge(t, b, sess)
	client.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("hello\n"), body...); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	if err := waitErr(t, done); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if code, reason := sess.closeStatus(t); code != wsbridge.CloseUpstreamClosed || reason != "upstream closed the connection" {
		t.Fatalf("closed with %d %q, want 4011", code, reason)
	}
	if v := metricValue(t, reg, "dualgate_wsbridge_bridges_ended_total", "route", "/u", "reason", "upstream_close"); v != 1 {
		t.Fatalf("ended metric = %v", v)
	}
}

func TestBridgeClientCloseReachesUpstream(t *testing.T) {
	addr, results := startTCPSink(t)
	b, _ := newBridger(t, []string{"/k=tcp://" + addr}, nil)
	client, server := tcpPair(t)
	sess := newRouteSession(server, "/k")
	done := runBridge(t, b, sess)
	data := bytes.Repeat([]byte("abc"), 100000)
	if _, err := client.Write(data); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	select {
	case r := <-results:
		if r.err != nil || r.n != int64(len(data)) {
			t.Fatalf("sink got %d bytes, err %v; want %d and a clean EOF", r.n, r.err, len(data))
		}
	case <-time.After(testTimeout):
		t.Fatal("sink saw no EOF")
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestBridgeDrain(t *testing.T) {
	addr, results := startTCPSink(t)
	b, reg := newBridger(t, []string{"/s=tcp://" + addr}, nil)
	const n = 8
	sessions := make([]*routeSession, n)
	clients := make([]net.Conn, n)
	for i := range sessions {
		client, server := tcpPair(t)
		clients[i] = client
		sessions[i] = newRouteSession(server, "/s")
		runBridge(t, b, sessions[i])
	}
	sent := make([]int, n)
	for i, c := range clients {
		p := []byte(fmt.Sprintf("session %d says hello", i))
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		sent[i] = len(p)
	}
	// Wait until every bridge is up and has forwarded its bytes.
	deadline := time.Now().Add(testTimeout)
	for metricValue(t, reg, "dualgate_wsbridge_bytes_total", "route", "/s", "direction", "in") < float64(sumInts(sent)) {
		if time.Now().After(deadline) {
			t.Fatal("bytes never forwarded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.Drain(testCtx(t)); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for _, s := range sessions {
		if code, reason := s.closeStatus(t); code != wsbridge.CloseGoingAway || reason == "" {
			t.Fatalf("closed with %d %q, want 1001", code, reason)
		}
	}
	var total int64
	for range sessions {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("upstream not closed cleanly: %v", r.err)
			}
			total += r.n
		case <-time.After(testTimeout):
			t.Fatal("upstream not closed")
		}
	}
	if total != int64(sumInts(sent)) {
		t.Fatalf("upstreams got %d bytes, want %d", total, sumInts(sent))
	}
	// New sessions are refused with 1001.
	_, server := tcpPair(t)
	late := newRouteSession(server, "/s")
	if err := b.Bridge(context.Background(), late); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Bridge after Drain = %v", err)
	}
	if code, _ := late.closeStatus(t); code != wsbridge.CloseGoingAway {
		t.Fatalf("late session closed with %d", code)
	}
}

func TestServeListener(t *testing.T) {
	// A plain net.Listener is an Acceptor of byte-stream sessions on the
	// default route, like legacy sessions.
	echo := startTCPEcho(t)
	b, _ := newBridger(t, []string{"/legacy=tcp://" + echo}, &wsbridge.Options{DefaultRoute: "/legacy"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- wsbridge.Serve(context.Background(), b, ln) }()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		streamRoundTrip(t, c, []byte(fmt.Sprintf("round trip %d", i)))
		c.Close()
	}
	ln.Close()
	if err := waitErr(t, served); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve = %v, want net.ErrClosed", err)
	}
}

func sumInts(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

func TestBridgerCloseStopsEverything(t *testing.T) {
	echo := startTCPEcho(t)
	b, _ := newBridger(t, []string{"/e=tcp://" + echo, "/b=builtin:echo"}, nil)
	var sessions []*routeSession
	var dones []<-chan error
	for i := 0; i < 6; i++ {
		client, server := tcpPair(t)
		route := "/e"
		if i%2 == 1 {
			route = "/b"
		}
		s := newRouteSession(server, route)
		sessions = append(sessions, s)
		dones = append(dones, runBridge(t, b, s))
		client.SetDeadline(time.Now().Add(testTimeout))
		client.Write([]byte("x"))
		io.ReadFull(client, make([]byte, 1)) // the bridge is up
	}
	if b.Active() != 6 {
		t.Fatalf("Active = %d, want 6", b.Active())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i, s := range sessions {
		if code, _ := s.closeStatus(t); code != wsbridge.CloseGoingAway {
			t.Fatalf("session %d closed with %d, want 1001", i, code)
		}
		if err := waitErr(t, dones[i]); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Bridge returned %v after Close", err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSetRoutes(t *testing.T) {
	b, _ := newBridger(t, []string{"/a=builtin:echo"}, nil)
	rt, err := wsbridge.ParseRoutes("/b=builtin:echo")
	if err != nil {
		t.Fatal(err)
	}
	b.SetRoutes(rt)
	client, server := tcpPair(t)
	done := runBridge(t, b, newRouteSession(server, "/b"))
	streamRoundTrip(t, client, []byte("new table"))
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	_, server = tcpPair(t)
	old := newRouteSession(server, "/a")
	if err := waitErr(t, runBridge(t, b, old)); err == nil {
		t.Fatal("old route still served after SetRoutes")
	}
}

func TestServeContextStopsAcceptingOnly(t *testing.T) {
	echo := startTCPEcho(t)
	b, _ := newBridger(t, []string{"/l=tcp://" + echo}, &wsbridge.Options{DefaultRoute: "/l"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- wsbridge.Serve(ctx, b, ln) }()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(testTimeout))
	first.Write([]byte("1"))
	io.ReadFull(first, make([]byte, 1))
	cancel()
	// Serve sees the cancellation with its next Accept.
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := waitErr(t, served); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v", err)
	}
	// The running bridge survives the cancelled accept loop.
	streamRoundTrip(t, first, []byte("still bridged"))
}

// TestBridgeDrainChattyUpstream: an upstream that keeps sending when the
// gateway drains sees a clean end (FIN, then its own close), not a reset.
func TestBridgeDrainChattyUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	readErrs := make(chan error, 1)
	serveListener(t, ln, func(c net.Conn) {
		stop := make(chan struct{})
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			buf := make([]byte, 8<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		_, err := io.Copy(io.Discard, c) // nil on the bridge's FIN
		close(stop)
		c.(*net.TCPConn).CloseWrite()
		<-wrote
		readErrs <- err
	})
	b, _ := newBridger(t, []string{"/c=tcp://" + ln.Addr().String()}, nil)
	client, server := tcpPair(t)
	sess := newRouteSession(server, "/c")
	runBridge(t, b, sess)
	client.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(client, make([]byte, 64<<10)); err != nil { // the upstream is streaming
		t.Fatal(err)
	}
	if err := b.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErrs:
		if err != nil {
			t.Fatalf("upstream saw %v, want a clean EOF", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("upstream never saw the end")
	}
}
