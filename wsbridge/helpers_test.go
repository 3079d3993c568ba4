package wsbridge_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dualgate/dualgate/wsbridge"
	"github.com/prometheus/client_golang/prometheus"
)

// testTimeout bounds every wait in these tests; generous for a loaded machine.
const testTimeout = 60 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// serveListener runs handle for every connection of ln until the test ends.
func serveListener(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// echoHandler echoes a byte stream and half-closes after the client's EOF.
func echoHandler(c net.Conn) {
	io.Copy(c, c)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// Wait for the bridge to close its side so the FIN is read.
	c.SetReadDeadline(time.Now().Add(testTimeout))
	io.Copy(io.Discard, c)
}

// startTCPEcho starts a real TCP echo upstream on loopback.
func startTCPEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, echoHandler)
	return ln.Addr().String()
}

// startUnixEcho starts a real unix-socket echo upstream.
func startUnixEcho(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, echoHandler)
	return path
}

// sinkResult is what a sink upstream connection received.
type sinkResult struct {
	n      int64
	sum    [32]byte
	err    error // nil after a clean EOF (FIN)
	header []byte
}

// startTCPSink starts a TCP upstream that reads everything and reports the
// count and SHA-256 of what each connection received once it sees EOF.
func startTCPSink(t testing.TB) (string, <-chan sinkResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan sinkResult, 1024)
	serveListener(t, ln, func(c net.Conn) {
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r sinkResult
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		res <- r
	})
	return ln.Addr().String(), res
}

// wsEchoServer is a real WebSocket upstream that echoes each message with
// its type.
func startWSEcho(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
					c.Close(websocket.StatusNormalClosure, "")
				}
				return
			}
			if err := c.Write(r.Context(), typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// routeSession is a byte-stream session (a real TCP conn) that carries its
// route and records how it was closed.
type routeSession struct {
	net.Conn
	route  string
	mu     sync.Mutex
	code   wsbridge.CloseCode
	reason string
	closed chan struct{}
	once   sync.Once
}

func newRouteSession(c net.Conn, route string) *routeSession {
	return &routeSession{Conn: c, route: route, closed: make(chan struct{})}
}

func (s *routeSession) Info() wsbridge.Info {
	ap, _ := netip.ParseAddrPort(s.RemoteAddr().String())
	return wsbridge.Info{Route: s.route, RemoteAddr: ap}
}

func (s *routeSession) CloseWithError(code wsbridge.CloseCode, reason string) error {
	s.mu.Lock()
	if s.code == 0 {
		s.code, s.reason = code, reason
	}
	s.mu.Unlock()
	s.once.Do(func() { close(s.closed) })
	return s.Conn.Close()
}

func (s *routeSession) Close() error { return s.CloseWithError(wsbridge.CloseNormal, "") }

// closeStatus waits for the session to be closed and returns the code.
func (s *routeSession) closeStatus(t testing.TB) (wsbridge.CloseCode, string) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(testTimeout):
		t.Fatal("session not closed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.reason
}

// wsSession is a message session over a real WebSocket connection: the test
// double of a resume session before resume lands (same shape: messages,
// close codes, info).
type wsSession struct {
	net.Conn
	c     *websocket.Conn
	route string
}

func (s *wsSession) Info() wsbridge.Info { return wsbridge.Info{Route: s.route} }

func (s *wsSession) ReadMessage(ctx context.Context) (wsbridge.MessageType, []byte, error) {
	typ, p, err := s.c.Read(ctx)
	if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
		return 0, nil, io.EOF
	}
	return wsbridge.MessageType(typ), p, err
}

func (s *wsSession) WriteMessage(ctx context.Context, typ wsbridge.MessageType, p []byte) error {
	return s.c.Write(ctx, websocket.MessageType(typ), p)
}

func (s *wsSession) CloseWithError(code wsbridge.CloseCode, reason string) error {
	return s.c.Close(websocket.StatusCode(code), reason)
}

func (s *wsSession) Close() error { return s.c.Close(websocket.StatusNormalClosure, "") }

// startWSGateway serves WebSocket clients as wsSessions bridged by b, on the
// route given by the request path.
func startWSGateway(t testing.TB, b *wsbridge.Bridger) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(1 << 20)
		s := &wsSession{Conn: websocket.NetConn(context.Background(), c, websocket.MessageBinary), c: c, route: r.URL.Path}
		b.Bridge(context.Background(), s)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newBridger(t testing.TB, routes []string, opts *wsbridge.Options) (*wsbridge.Bridger, *prometheus.Registry) {
	t.Helper()
	rt, err := wsbridge.ParseRoutes(routes...)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if opts == nil {
		opts = &wsbridge.Options{}
	}
	opts.Registerer = reg
	b, err := wsbridge.New(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b, reg
}

// runBridge runs b.Bridge(s) in a goroutine and returns its result channel.
func runBridge(t testing.TB, b *wsbridge.Bridger, s wsbridge.Session) <-chan error {
	t.Helper()
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() { ch <- b.Bridge(context.Background(), s); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Error("bridge did not return")
		}
	})
	return ch
}

func waitErr(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out")
		return errors.New("timeout")
	}
}
