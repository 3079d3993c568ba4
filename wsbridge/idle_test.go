package wsbridge_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/wsbridge"
)

// TestIdleSessionGoroutines checks the idle-memory design
// (docs/architecture.md, "What an idle session costs"): a connected, idle
// session over ws:// leaves on the gateway side no goroutine at all once it
// has been quiet for a second, bridged to a TCP upstream or to the built-in
// echo: none in the HTTP server, the handler or a bridge loop, and none
// parked in a raw read (internal/rawio), since the transport's and the
// upstream's sockets wait in the process's epoll set (rawio.Reader.Park).
func TestIdleSessionGoroutines(t *testing.T) {
	g := startGateway(t, []string{"/tcp=tcp://" + startTCPEcho(t), "/echo=builtin:echo"}, nil, nil)
	for _, tt := range []struct {
		route  string
		parked int // per session
	}{{"/tcp", 0}, {"/echo", 0}} {
		t.Run(tt.route, func(t *testing.T) { testIdleGoroutines(t, g, tt.route, tt.parked) })
	}
}

func testIdleGoroutines(t *testing.T, g *gateway, route string, perSession int) {
	const sessions = 40
	ctx := testCtx(t)
	var conns []*resume.Conn
	for range sessions {
		c, err := resume.Dial(ctx, g.url(false, route), g.dialOpts())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("ping")); err != nil { // the upstream is dialled and used
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("echo: %q %v", got, err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	// Goroutines settle once the last echo's pumps have parked again.
	var parked, busy int
	var dump []byte
	// Generous: a session closed by the previous subtest may take up to
	// the close timeout (5 s) to finish on the gateway under load.
	for deadline := time.Now().Add(15 * time.Second); ; {
		parked, busy, dump = gatewayGoroutines()
		if (parked == perSession*sessions && busy == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if parked != perSession*sessions || busy != 0 {
		t.Fatalf("%d sessions: %d gateway goroutines parked in a raw read (want %d) and %d others (want 0):\n%s",
			sessions, parked, perSession*sessions, busy, dump)
	}
}

// gatewayGoroutines counts the goroutines of the gateway side: parked in a
// raw read of a transport or an upstream, and any other in the handler,
// the HTTP server or a bridge. Client goroutines (resume.Dial) are ignored.
func gatewayGoroutines() (parked, busy int, dump []byte) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var others [][]byte
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		switch {
		case strings.Contains(s, "resume.(*clientSide)"), strings.Contains(s, "routineFlush"):
			// the client side, or a flusher finishing its last write
		case strings.Contains(s, "resume.(*link).waitRead") || strings.Contains(s, "wsbridge.(*streamPoll).notify"):
			// waiting in a raw read, or about to
			parked++
		case strings.Contains(s, "wsbridge.(*Bridger)"), strings.Contains(s, "wsbridge.(*Handler)"),
			strings.Contains(s, "wsbridge.(*pump)"), strings.Contains(s, "resume.(*link)"),
			strings.Contains(s, "wsbridge.(*echoEnd)"),
			strings.Contains(s, "net/http.(*conn).serve"):
			busy++
			others = append(others, g)
		}
	}
	return parked, busy, bytes.Join(others, []byte("\n\n"))
}

// TestParkedBridgeEnds closes sessions whose bridge has been quiet long
// enough for both its readers to park in rawio's epoll set, towards an
// upstream that never closes its side: each bridge must still end (the
// upstream is closed at the close timeout, and closing it must hand the
// parked upstream reader its end, since a closed socket does not report to
// epoll).
func TestParkedBridgeEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	serveListener(t, ln, func(c net.Conn) {
		io.Copy(io.Discard, c) //nolint:errcheck // reads up to the gateway's FIN
		<-stop                 // and never closes its own side
	})
	t.Cleanup(func() { close(stop) }) // runs before serveListener's cleanup
	g := startGateway(t, []string{"/hold=tcp://" + ln.Addr().String()}, nil, &wsbridge.Options{CloseTimeout: 300 * time.Millisecond})
	const sessions = 4
	var conns []*resume.Conn
	for range sessions {
		c, err := resume.Dial(testCtx(t), g.url(false, "/hold"), g.dialOpts())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	active := func() float64 { return metricValue(t, g.reg, "dualgate_wsbridge_bridges_active", "route", "/hold") }
	waitFor(t, func() bool { return active() == sessions }, "bridges active")
	time.Sleep(1500 * time.Millisecond) // quiet: both sides park in epoll
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, func() bool { return active() == 0 }, "every parked bridge ended")
}
