package wsbridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/wsbridge"
)

// TestLegacySessions bridges real legacy sessions (legacy.Server on a real
// TCP listener, legacy.Dial clients) with the same Serve loop: byte streams
// on the route from their legacy.Info (via Options.SessionInfo).
func TestLegacySessions(t *testing.T) {
	echo := startTCPEcho(t)
	b, reg := newBridger(t, []string{"/legacy=tcp://" + echo, "/legacy-ws=tcp://" + echo}, &wsbridge.Options{
		DefaultRoute: "/legacy",
		SessionInfo: func(c net.Conn) (wsbridge.Info, bool) {
			li, ok := legacy.SessionInfo(c)
			return wsbridge.Info{Route: li.Route, RemoteAddr: li.RemoteAddr, Secure: li.Secure}, ok
		},
	})
	srv, err := legacy.NewServer(&legacy.ServerOptions{Encrypt: true, ReconnectWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, func(c net.Conn) {
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		srv.ServeConn(context.Background(), c, legacy.Info{RemoteAddr: ap, Route: "/legacy-ws"})
	})
	served := make(chan error, 1)
	go func() { served <- wsbridge.Serve(context.Background(), b, srv) }()
	defer func() {
		srv.Close()
		// legacy's Accept error after Close does not wrap net.ErrClosed.
		if err := waitErr(t, served); err == nil {
			t.Error("Serve returned nil after the server closed")
		}
	}()

	ctx := testCtx(t)
	c, err := legacy.Dial(ctx, "tcp", ln.Addr().String(), &legacy.DialOptions{Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 512<<10)
	rand.Read(data)
	c.SetDeadline(time.Now().Add(testTimeout))
	go c.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("legacy echo mismatch")
	}
	waitFor(t, func() bool { return b.Active() == 1 }, "legacy bridge active")
	if v := metricValue(t, reg, "dualgate_wsbridge_bytes_total", "route", "/legacy-ws", "direction", "out"); v != float64(len(data)) {
		t.Fatalf("bytes on the session's own route = %v, want %d (routed by Options.SessionInfo)", v, len(data))
	}
	c.Close()
	// The legacy protocol has no close message: the server ends the
	// session once its client has not reconnected within ReconnectWait.
	waitFor(t, func() bool { return b.Active() == 0 }, "legacy bridge ended after the client closed")
}
