package resume

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a resume.Server behind a real loopback TCP listener (byte
// stream) and a real HTTP server (WebSocket).
type testServer struct {
	srv   *Server
	key   *Key
	tcp   net.Listener
	http  *httptest.Server
	wg    sync.WaitGroup
	errMu sync.Mutex
	errs  []error
}

func fastOpts(key *Key) *ServerOptions {
	return &ServerOptions{Key: key, PingInterval: 200 * time.Millisecond, DeadTimeout: 2 * time.Second,
		HandshakeTimeout: 5 * time.Second, DetachedTTL: 20 * time.Second, CloseTimeout: 5 * time.Second}
}

func newTestServer(tb testing.TB, opts *ServerOptions) *testServer {
	tb.Helper()
	if opts == nil {
		k, err := GenerateKey()
		if err != nil {
			tb.Fatal(err)
		}
		opts = fastOpts(k)
	}
	srv, err := NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{srv: srv, key: opts.Key}
	ts.tcp, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	serveAccepted(&ts.wg, ts.tcp, func(c net.Conn) {
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		ts.record(srv.ServeConn(context.Background(), c, TransportInfo{Route: "/tcp", RemoteAddr: ap}))
	})
	// The WebSocket side is served as the gateway serves it: UpgradeWebSocket,
	// then StartTransport (the handler returns; tls_test.go covers the
	// coder/websocket adapter, WebSocketTransport).
	ts.http = httptest.NewServer(serveUpgrades(srv, &ts.wg, nil, nil, ts.record))
	tb.Cleanup(ts.close)
	return ts
}

// serveUpgrades returns a handler that serves each request as the gateway
// does: UpgradeWebSocket, then StartTransport (the handler returns), with
// the request's path and client address in the TransportInfo. ctx (nil:
// context.Background) gives each transport's context, edit (may be nil)
// completes its TransportInfo, ended (may be nil) receives the error of its
// end; wg counts the transports that run.
func serveUpgrades(srv *Server, wg *sync.WaitGroup, ctx func() context.Context, edit func(*http.Request, *TransportInfo), ended func(error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := UpgradeWebSocket(w, r)
		if err != nil {
			return
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		info := TransportInfo{Route: r.URL.Path, RemoteAddr: ap}
		if edit != nil {
			edit(r, &info)
		}
		tctx := context.Background()
		if ctx != nil {
			tctx = ctx()
		}
		wg.Add(1)
		srv.StartTransport(tctx, t, info, func(err error) {
			if ended != nil {
				ended(err)
			}
			wg.Done()
		})
	}
}

// serveAccepted accepts connections on ln until it is closed and runs
// handle for each in its own goroutine; wg counts them all.
func serveAccepted(wg *sync.WaitGroup, ln net.Listener, handle func(net.Conn)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
}

func (ts *testServer) record(err error) {
	if err != nil {
		ts.errMu.Lock()
		ts.errs = append(ts.errs, err)
		ts.errMu.Unlock()
	}
}

func (ts *testServer) tcpURL() string { return "tcp://" + ts.tcp.Addr().String() }
func (ts *testServer) wsURL() string  { return "ws" + strings.TrimPrefix(ts.http.URL, "http") + "/ws" }

func (ts *testServer) close() {
	ts.srv.Close()
	ts.tcp.Close()
	ts.http.CloseClientConnections()
	ts.http.Close()
	ts.wg.Wait()
}

// acceptOne returns the next session with a deadline.
func (ts *testServer) acceptOne(tb testing.TB) *Conn {
	tb.Helper()
	return acceptWithin(tb, ts.srv)
}

// acceptWithin returns srv's next session, failing the test (and closing
// srv) when none comes within 20 s.
func acceptWithin(tb testing.TB, srv *Server) *Conn {
	tb.Helper()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := srv.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatal(r.err)
		}
		return r.c
	case <-time.After(20 * time.Second):
		srv.Close()
		<-ch
		tb.Fatal("no session accepted")
	}
	return nil
}

func fastDial(key string) *DialOptions {
	return &DialOptions{ServerKey: key, PingInterval: 200 * time.Millisecond, DeadTimeout: 2 * time.Second,
		HandshakeTimeout: 5 * time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		CloseTimeout: 5 * time.Second}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
