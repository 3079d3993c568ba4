package resume

import (
	"errors"
	"io"
	"testing"
	"time"
)

// waitNotified returns once f registered with NotifyReadable has run.
func waitNotified(t *testing.T, c *Conn) {
	t.Helper()
	ran := make(chan struct{})
	c.NotifyReadable(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("NotifyReadable's function did not run")
	}
}

func TestTryReadAndNotifyReadable(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	buf := make([]byte, 64)
	if n, err := sc.TryRead(buf); n != 0 || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryRead with nothing received: %d, %v", n, err)
	}
	ran := make(chan struct{})
	sc.NotifyReadable(func() { close(ran) })
	select {
	case <-ran:
		t.Fatal("NotifyReadable ran with nothing to read")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("NotifyReadable did not run when data arrived")
	}
	if n, err := sc.TryRead(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("TryRead after the notification: %q, %v", buf[:n], err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, sc) // the end is something to read too
	if n, err := sc.TryRead(buf); n != 0 || err != io.EOF {
		t.Fatalf("TryRead after the peer's close: %d, %v", n, err)
	}
}

func TestTryAppendMessageKeepsBoundariesAndTypes(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	if _, _, err := sc.TryAppendMessage(nil); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryAppendMessage with nothing received: %v", err)
	}
	ctx := ctxT(t)
	if err := c.WriteMessage(ctx, MessageText, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(ctx, MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		typ MessageType
		p   string
	}{{MessageText, "first"}, {MessageBinary, "\x00\x01\x02"}} {
		for {
			typ, p, err := sc.TryAppendMessage([]byte("x"))
			if errors.Is(err, ErrWouldBlock) {
				waitNotified(t, sc)
				continue
			}
			if err != nil || typ != want.typ || string(p) != "x"+want.p {
				t.Fatalf("TryAppendMessage = %v %q %v, want %v %q", typ, p, err, want.typ, "x"+want.p)
			}
			break
		}
	}
}
