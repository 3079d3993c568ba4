package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// timeout bounds every blocking step of a test; generous for a loaded
// machine.
const timeout = 20 * time.Second

// silence is how long a test listens to make sure nothing arrives.
const silence = 200 * time.Millisecond

// target is a loopback listener whose accepted connections a test takes
// one by one.
type target struct {
	ln    net.Listener
	conns chan net.Conn
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, conns: make(chan net.Conn, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		close(tg.conns)
		for c := range tg.conns {
			_ = c.Close()
		}
	})
	return tg
}

func (tg *target) addr() string { return tg.ln.Addr().String() }

// next returns the next connection the target accepted.
func (tg *target) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-tg.conns:
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(timeout))
		return c
	case <-time.After(timeout):
		t.Fatal("target accepted nothing")
		return nil
	}
}

func newProxy(t *testing.T, target string, opts *faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(timeout))
	return c
}

// link dials through p and returns both ends of the proxied connection.
func link(t *testing.T, p *faultproxy.Proxy, tg *target) (client, server net.Conn) {
	t.Helper()
	before := p.Conns()
	client = dial(t, p)
	server = tg.next(t)
	// The target accepts before the proxy has registered the link: wait,
	// so that a Strike right after link sees it.
	if err := p.WaitConns(context.Background(), before+1); err != nil {
		t.Fatal(err)
	}
	return client, server
}

func send(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(to, buf); err != nil || string(buf) != msg {
		t.Fatalf("forwarded %q, %v; want %q", buf, err, msg)
	}
}

// readErr reads once from c (waiting at most d) and returns the error.
func readErr(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err
}

func wantEOF(t *testing.T, side string, c net.Conn) {
	t.Helper()
	if err := readErr(c, timeout); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: want EOF (FIN), got %v", side, err)
	}
}

func wantReset(t *testing.T, side string, c net.Conn) {
	t.Helper()
	if err := readErr(c, timeout); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: want connection reset (RST), got %v", side, err)
	}
}

func wantSilence(t *testing.T, side string, c net.Conn) {
	t.Helper()
	if err := readErr(c, silence); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: want silence, got %v", side, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
}

func waitConns(t *testing.T, p *faultproxy.Proxy, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.WaitConns(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// wantClosed expects a FIN or an RST: closing a socket with unread data
// (the bytes a silent link swallowed) sends an RST.
func wantClosed(t *testing.T, side string, c net.Conn) {
	t.Helper()
	if err := readErr(c, timeout); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: want closed, got %v", side, err)
	}
}
