package legacy

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestShutdown(t *testing.T) {
	ts := startServer(t, nil, nil)
	s := rawNewSession(t, ts.addr, false)
	sess := ts.accept(t)
	s.send(t, []byte("before"))
	mustRead(t, sess, 6)

	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { done <- ts.Shutdown(ctx) }()

	if _, err := ts.Accept(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("accept during shutdown: %v", err)
	}
	// New sessions are refused while draining…
	waitFor(t, func() bool {
		c := rawDial(t, ts.addr)
		_, pub, _ := newKeyPair(rand.Reader)
		mustWrite(t, c, appendNewRequest(nil, pub))
		var b [1]byte
		n, _ := c.Read(b[:])
		_ = c.Close()
		return n == 0
	}, "new sessions refused")
	// …but live sessions still reconnect and talk.
	s.reconnect(t, ts.addr, s.request())
	s.send(t, []byte("during"))
	if got := mustRead(t, sess, 6); string(got) != "during" {
		t.Fatalf("got %q", got)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned %v with a live session", err)
	default:
	}
	_ = sess.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shutdown did not return after the last session ended")
	}
	c := rawDial(t, ts.addr)
	if err := ts.ServeConn(context.Background(), c, Info{}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve after shutdown: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctxDial, cancelDial := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelDial()
	c, err := Dial(ctxDial, "tcp", ts.addr, &DialOptions{ReconnectWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess := ts.accept(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := sess.Write([]byte("x")); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("write after hard close: %v", err)
	}
	// A closed server answers nothing; the client gives up after its
	// ReconnectWait.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("client read after server close: %v", err)
	}
}
