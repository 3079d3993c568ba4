package resume

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/resume/resumetest"
)

// TestConcurrentResumesNewestWins: a CONFIRM of an older resume attempt does
// not displace a transport attached by a newer one.
func TestConcurrentResumesNewestWins(t *testing.T) {
	ts := newTestServer(t, nil)
	rs := rawNew(t, ts, PatternNN)
	sc := ts.acceptOne(t)
	ctx := ctxT(t)
	chA, msgA := resumeMsg(t, rs.id, rs.secret, 2, nil)
	tA, ansA := exchange(t, ts, msgA)
	_, resA, err := chA.readServerHello(ansA)
	if err != nil {
		t.Fatal(err)
	}
	chB, msgB := resumeMsg(t, rs.id, rs.secret, 3, nil)
	tB, ansB := exchange(t, ts, msgB)
	_, resB, err := chB.readServerHello(ansB)
	if err != nil {
		t.Fatal(err)
	}
	confirm := func(tr *streamTransport, res handshakeResult) {
		ct, _ := sealFrame(res.send, nil, appendFrame(nil, &frame{typ: frameConfirm}))
		if err := tr.WriteMessage(ctx, ct); err != nil {
			t.Fatal(err)
		}
	}
	confirm(tB, resB)
	waitFor(t, func() bool {
		sc.s.mu.Lock()
		defer sc.s.mu.Unlock()
		return sc.s.link != nil && sc.s.link.counter == 3
	})
	confirm(tA, resA)
	if _, err := tA.ReadMessage(ctx); err == nil {
		t.Fatal("older resume attempt was not closed")
	}
	if _, err := sc.Write([]byte("to B")); err != nil {
		t.Fatal(err)
	}
	msg, err := tB.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := openFrame(resB.recv, nil, msg)
	if err != nil || f.typ != frameData || string(f.payload) != "to B" {
		t.Fatalf("transport B got %+v %v", f, err)
	}
}

func TestWebSocketTextMessageRejected(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := ctxT(t)
	c, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("want close 1003, got %v", err)
	}
}

func TestClientGivesUp(t *testing.T) {
	k, _ := GenerateKey()
	so := fastOpts(k)
	so.CloseTimeout = 300 * time.Millisecond // the server's Close cannot reach the client
	ts := newTestServer(t, so)
	p := resumetest.NewProxy(t, ts.tcp.Addr().String())
	o := fastDial("")
	o.GiveUp = 500 * time.Millisecond
	c, _ := dialPair(t, ts, "tcp://"+p.Addr(), o)
	p.Close() // no more transports
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	t.Logf("ended after %v", time.Since(start))
	if CloseStatus(err) != CloseSessionExpired {
		t.Fatalf("want %d, got %v", CloseSessionExpired, err)
	}
	if c.State() != StateClosed {
		t.Fatalf("state %v", c.State())
	}
}

func TestServerRestartEndsSession(t *testing.T) {
	ts := newTestServer(t, nil)
	p := resumetest.NewProxy(t, ts.tcp.Addr().String())
	c, sc := dialPair(t, ts, "tcp://"+p.Addr(), nil)
	// The server forgets the session (as after a restart); the client's
	// resume is refused with a final code and the session ends.
	sc.s.mu.Lock()
	sc.s.endLocked(errors.New("test: forgotten"))
	sc.s.mu.Unlock()
	p.KillAll()
	_, err := c.Read(make([]byte, 1))
	if CloseStatus(err) != CloseUnknownSession {
		t.Fatalf("want %d, got %v", CloseUnknownSession, err)
	}
}

func TestDialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{"http://x", "ws://127.0.0.1:1/x", "tcp://127.0.0.1:1"} {
		if _, err := Dial(ctx, u, fastDial("")); err == nil {
			t.Fatalf("%s: dial succeeded", u)
		}
	}
	if _, err := Dial(ctx, "tcp://127.0.0.1:1", &DialOptions{ServerKey: "not-a-key"}); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Fatalf("bad key: %v", err)
	}
}

// TestReadMessageTimeoutKeepsPartial: a deadline in the middle of a message
// does not lose the part already taken.
func TestReadMessageTimeoutKeepsPartial(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	// Send the first half of a message by hand: a raw write without FIN is
	// what a large message looks like while it is in flight.
	c.s.mu.Lock()
	c.s.sTailText = true
	c.s.sq.append([]byte("first half, "))
	c.s.kickLocked()
	c.s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, err := sc.ReadMessage(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a timeout, got %v", err)
	}
	c.s.mu.Lock()
	c.s.sq.append([]byte("second half"))
	c.s.smsgs.push(c.s.sq.end(), true)
	c.s.kickLocked()
	c.s.mu.Unlock()
	typ, msg, err := sc.ReadMessage(ctxT(t))
	if err != nil || typ != MessageText || string(msg) != "first half, second half" {
		t.Fatalf("%v %q %v", typ, msg, err)
	}
}

func TestAppendMessageReusesBuffer(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	for _, m := range []string{"one", "two two", "three"} {
		if err := c.WriteMessage(ctxT(t), MessageBinary, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 64)
	for _, want := range []string{"one", "two two", "three"} {
		typ, msg, err := sc.AppendMessage(ctxT(t), buf[:0])
		if err != nil || typ != MessageBinary || string(msg) != want || &msg[0] != &buf[:1][0] {
			t.Fatalf("%q %v (reused: %v)", msg, err, len(msg) > 0 && &msg[0] == &buf[:1][0])
		}
	}
}
