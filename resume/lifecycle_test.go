package resume

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dualgate/dualgate/resume/resumetest"
)

// startTransportServer serves WebSocket transports with StartTransport,
// each on a context of its own that the test can cancel; ended receives
// the error of every transport's end.
type startTransportServer struct {
	srv   *Server
	http  *httptest.Server
	ended chan error
	wg    sync.WaitGroup // running transports

	mu      sync.Mutex
	cancels []context.CancelFunc
}

func newStartTransportServer(t *testing.T, opts *ServerOptions) *startTransportServer {
	t.Helper()
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &startTransportServer{srv: srv, ended: make(chan error, 16)}
	ctx := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		s.mu.Lock()
		s.cancels = append(s.cancels, cancel)
		s.mu.Unlock()
		return ctx
	}
	s.http = httptest.NewServer(serveUpgrades(srv, &s.wg, ctx, nil, func(err error) { s.ended <- err }))
	t.Cleanup(func() {
		srv.Close()
		s.http.CloseClientConnections()
		s.http.Close()
		s.wg.Wait()
		s.mu.Lock()
		for _, c := range s.cancels {
			c()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *startTransportServer) url() string {
	return "ws" + strings.TrimPrefix(s.http.URL, "http") + "/ws"
}

// cancelTransport cancels the context of the i-th transport served.
func (s *startTransportServer) cancelTransport(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels[i]()
}

func (s *startTransportServer) waitEnded(t *testing.T, what string) error {
	t.Helper()
	select {
	case err := <-s.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the transport did not end", what)
	}
	return nil
}

// TestStartTransportContext: cancelling the context given to StartTransport
// ends that transport only (a served transport has no context of its own:
// StartTransport watches the caller's); the session stays, and the client
// resumes it on a new transport with every byte.
func TestStartTransportContext(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := newStartTransportServer(t, fastOpts(k))
	do := fastDial("")
	var detached atomic.Int32
	do.OnStateChange = func(st State) {
		if st == StateDetached {
			detached.Add(1)
		}
	}
	c, err := Dial(ctxT(t), s.url(), do)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := acceptWithin(t, s.srv)
	defer sc.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))  //nolint:errcheck
	sc.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	if _, err := c.Write([]byte("one ")); err != nil {
		t.Fatal(err)
	}
	s.cancelTransport(0)
	if err := s.waitEnded(t, "after its context was cancelled"); err != nil {
		t.Logf("transport ended with %v", err)
	}
	if _, err := c.Write([]byte("two")); err != nil { // on the resumed transport
		t.Fatal(err)
	}
	got := make([]byte, len("one two"))
	if _, err := io.ReadFull(sc, got); err != nil || string(got) != "one two" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if got := detached.Load(); got != 1 {
		t.Fatalf("the client detached %d times, want 1", got)
	}
}

// TestCloseEndsHandshake: Close ends a transport that is still in its
// handshake (a client that never sends its hello) at once, not at the
// handshake timeout.
func TestCloseEndsHandshake(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(k)
	opts.HandshakeTimeout = time.Minute
	s := newStartTransportServer(t, opts)
	conn, err := net.Dial("tcp", s.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A WebSocket upgrade, then silence.
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + Subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	buf := make([]byte, 512)
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), " 101 ") {
		t.Fatalf("upgrade: %q %v", buf[:n], err)
	}
	s.srv.Close()
	if err := s.waitEnded(t, "after Close"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handshake ended with %v, want the end Close caused", err)
	}
}

// TestStartClose: StartClose sends the CLOSE and returns; the session ends
// when the client answers (the client sees the code), or, for a session
// whose client is away, at the close timeout by its timer. A second close
// reports net.ErrClosed.
func TestStartClose(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(k)
	opts.CloseTimeout = 2 * time.Second // the detached session ends by it
	ts := newTestServer(t, opts)

	// A client that answers.
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	if err := sc.StartClose(CloseGoingAway, "go elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := sc.StartClose(CloseGoingAway, ""); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second StartClose: %v", err)
	}
	_, _, err = c.ReadMessage(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseGoingAway || ce.Reason != "go elsewhere" {
		t.Fatalf("client saw %v, want 1001 go elsewhere", err)
	}
	select {
	case <-sc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server's session did not end after the client's answer")
	}

	// A client that is away: the timer ends the session.
	proxy := resumetest.NewProxy(t, ts.tcp.Addr().String())
	do := fastDial("")
	do.CloseTimeout = 300 * time.Millisecond
	c2, sc2 := dialPair(t, ts, "tcp://"+proxy.Addr(), do)
	defer c2.Close()
	proxy.Close()
	waitFor(t, func() bool { return sc2.State() == StateDetached })
	if err := sc2.StartClose(CloseGoingAway, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc2.Done():
		t.Error("StartClose returned only once the session had ended: it must not wait for the close timeout")
	default:
	}
	select {
	case <-sc2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the detached session did not end at the close timeout")
	}
}
