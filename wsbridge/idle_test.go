package wsbridge_test

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/resume"
)

// TestIdleSessionGoroutines checks the idle-memory design
// (docs/architecture.md, "What an idle session costs"): a connected, idle
// session over ws:// bridged to a TCP upstream leaves on the gateway side
// one goroutine, parked in a raw read of the upstream (internal/rawio), and
// none in the HTTP server, the handler or a bridge loop: the transport
// waits in the process's epoll set (rawio.Reader.Park) with no goroutine.
// Bridged to the built-in echo it leaves none.
func TestIdleSessionGoroutines(t *testing.T) {
	g := startGateway(t, []string{"/tcp=tcp://" + startTCPEcho(t), "/echo=builtin:echo"}, nil, nil)
	for _, tt := range []struct {
		route  string
		parked int // per session
	}{{"/tcp", 1}, {"/echo", 0}} {
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
		case strings.Contains(s, "rawio.(*Reader).Read") &&
			(strings.Contains(s, "resume.(*link).parkRead") || strings.Contains(s, "wsbridge.(*streamPoll).notify")):
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
