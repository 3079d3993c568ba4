package legacy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLog collects log records for assertions.
type testLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testServer is a legacy Server behind a real loopback listener, optionally
// TLS-wrapped.
type testServer struct {
	*Server
	ln   net.Listener
	addr string
	log  *testLog
	wg   sync.WaitGroup
}

// startServer serves srv on 127.0.0.1 until the test ends. With tlsCfg,
// connections are TLS-terminated first, as tlsmux does.
func startServer(tb testing.TB, opts *ServerOptions, tlsCfg *tls.Config) *testServer {
	tb.Helper()
	o := ServerOptions{}
	if opts != nil {
		o = *opts
	}
	ts := &testServer{log: &testLog{}}
	if o.Logger == nil {
		o.Logger = ts.log.logger()
	}
	srv, err := NewServer(&o)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts.Server, ts.ln, ts.addr = srv, ln, ln.Addr().String()
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			info := Info{RemoteAddr: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
			if tlsCfg != nil {
				c = tls.Server(c, tlsCfg)
				info.Secure = true
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				_ = srv.ServeConn(context.Background(), c, info)
			}()
		}
	}()
	tb.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	_ = ts.ln.Close()
	_ = ts.Server.Close()
	ts.wg.Wait()
}

// accept waits for the next session with a deadline.
func (ts *testServer) accept(tb testing.TB) *Conn {
	tb.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ts.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatalf("accept: %v", r.err)
		}
		return r.c.(*Conn)
	case <-time.After(20 * time.Second):
		tb.Fatal("accept: no session within 20s")
		return nil
	}
}

// echo copies everything a session receives back to it until it ends.
func echo(c net.Conn, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
}

// rawDial opens a plain TCP connection with a generous deadline.
func rawDial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func mustWrite(tb testing.TB, w io.Writer, b []byte) {
	tb.Helper()
	if _, err := w.Write(b); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

func mustRead(tb testing.TB, r io.Reader, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		tb.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// expectClosed asserts that the peer closes c without sending anything.
func expectClosed(tb testing.TB, c net.Conn) {
	tb.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil {
		tb.Fatalf("expected close without reply, got %d bytes, err %v", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tb.Fatalf("expected close, got timeout: %v", err)
	}
}

func addrPort(a net.Addr) netip.AddrPort { return netipAddrPort(a) }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
