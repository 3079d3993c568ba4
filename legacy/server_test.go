package legacy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawSession is a hand-driven client of the wire format, for feeding the
// server exactly the bytes a test wants.
type rawSession struct {
	conn          net.Conn
	key           sessionKey
	id            uint64
	read, write   *rc4.Cipher
	encrypt       bool
	wrote, gotten uint64
}

func rawNewSession(tb testing.TB, addr string, encrypt bool) *rawSession {
	tb.Helper()
	priv, pub, err := newKeyPair(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	c := rawDial(tb, addr)
	mustWrite(tb, c, appendNewRequest(nil, pub))
	resp, err := parseNewResponse(mustRead(tb, c, newResponseLen))
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawSession{conn: c, key: keyFromSecret(dhSecret(priv, resp.serverPub)), encrypt: encrypt}
	s.read, s.write = newCiphers(s.key)
	s.read.XORKeyStream(resp.encID[:], resp.encID[:])
	s.id = binary.LittleEndian.Uint64(resp.encID[:])
	ans := proof(resp.challenge[:], s.key)
	mustWrite(tb, c, ans[:])
	return s
}

func (s *rawSession) send(tb testing.TB, p []byte) {
	tb.Helper()
	b := append([]byte(nil), p...)
	if s.encrypt {
		s.write.XORKeyStream(b, b)
	}
	mustWrite(tb, s.conn, b)
	s.wrote += uint64(len(p))
}

func (s *rawSession) recv(tb testing.TB, n int) []byte {
	tb.Helper()
	b := mustRead(tb, s.conn, n)
	if s.encrypt {
		s.read.XORKeyStream(b, b)
	}
	s.gotten += uint64(n)
	return b
}

// roundTrip sends msg and expects the server's echo of it.
func (s *rawSession) roundTrip(tb testing.TB, msg string) {
	tb.Helper()
	s.send(tb, []byte(msg))
	if got := s.recv(tb, len(msg)); string(got) != msg {
		tb.Fatalf("echo %q, want %q", got, msg)
	}
}

// request returns a signed reconnect request for the current counts.
func (s *rawSession) request() []byte {
	r := reconnectRequest{id: s.id, writeCount: s.wrote, readCount: s.gotten}
	r.sign(s.key)
	b := r.marshal()
	return b[:]
}

// reconnect moves the session to a new conn with req and answers the
// challenge; nothing is outstanding, so nothing is resent.
func (s *rawSession) reconnect(tb testing.TB, addr string, req []byte) {
	tb.Helper()
	_ = s.conn.Close()
	c := rawDial(tb, addr)
	mustWrite(tb, c, req)
	resp, _ := parseReconnectResponse(mustRead(tb, c, reconnectResponseLen))
	if resp.refused() {
		tb.Fatal("reconnect refused")
	}
	if resp.writeCount != s.gotten || resp.readCount != s.wrote {
		tb.Fatalf("server counts %d/%d, want %d/%d", resp.writeCount, resp.readCount, s.gotten, s.wrote)
	}
	ans := proof(resp.challenge[:], s.key)
	mustWrite(tb, c, ans[:])
	s.conn = c
}

// expectRefusal asserts the 24 zero bytes and the close.
func expectRefusal(tb testing.TB, c net.Conn) {
	tb.Helper()
	b := mustRead(tb, c, reconnectResponseLen)
	if !bytes.Equal(b, make([]byte, reconnectResponseLen)) {
		tb.Fatalf("expected 24 zero bytes, got %x", b)
	}
	expectClosed(tb, c)
}

// bystander is a healthy Go-client session that must not notice anything.
type bystander struct {
	c  *Conn
	wg sync.WaitGroup
}

func newBystander(tb testing.TB, ts *testServer, opts *DialOptions) *bystander {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", ts.addr, opts)
	if err != nil {
		tb.Fatal(err)
	}
	b := &bystander{c: c}
	echo(ts.accept(tb), &b.wg)
	tb.Cleanup(func() {
		_ = c.Close()
		_ = ts.Server.Close()
		b.wg.Wait()
	})
	b.check(tb)
	return b
}

func (b *bystander) check(tb testing.TB) {
	tb.Helper()
	msg := make([]byte, 1000)
	_, _ = rand.Read(msg)
	_ = b.c.SetDeadline(time.Now().Add(20 * time.Second))
	mustWrite(tb, b.c, msg)
	if got := mustRead(tb, b.c, len(msg)); !bytes.Equal(got, msg) {
		tb.Fatal("bystander echo corrupted")
	}
}

func TestBadInput(t *testing.T) {
	ts := startServer(t, &ServerOptions{Encrypt: true, HandshakeTimeout: 2 * time.Second}, nil)
	by := newBystander(t, ts, &DialOptions{Encrypt: true})

	cases := []struct {
		name   string
		result string
		run    func(t *testing.T)
	}{
		{"wrong type byte", resultWrongType, func(t *testing.T) {
			c := rawDial(t, ts.addr)
			mustWrite(t, c, []byte{0x42, 1, 2, 3})
			expectClosed(t, c)
		}},
		{"zero public key", resultBadKey, func(t *testing.T) {
			c := rawDial(t, ts.addr)
			mustWrite(t, c, appendNewRequest(nil, 0))
			expectClosed(t, c)
		}},
		{"public key one", resultBadKey, func(t *testing.T) {
			c := rawDial(t, ts.addr)
			mustWrite(t, c, appendNewRequest(nil, 1))
			expectClosed(t, c)
		}},
		{"wrong MD5 on new session", resultBadProof, func(t *testing.T) {
			c := rawDial(t, ts.addr)
			_, pub, _ := newKeyPair(rand.Reader)
			mustWrite(t, c, appendNewRequest(nil, pub))
			mustRead(t, c, newResponseLen)
			mustWrite(t, c, make([]byte, proofLen))
			expectClosed(t, c)
		}},
		{"unknown ID", resultUnknownID, func(t *testing.T) {
			c := rawDial(t, ts.addr)
			r := reconnectRequest{id: 12345, writeCount: 1, readCount: 2}
			r.sign(sessionKey{1, 2, 3})
			b := r.marshal()
			mustWrite(t, c, b[:])
			expectRefusal(t, c)
		}},
		{"wrong MD5 on reconnect", resultBadProof, func(t *testing.T) {
			w, r := by.c.counts()
			req := reconnectRequest{id: by.c.ID(), writeCount: w, readCount: r}
			req.sign(sessionKey{9, 9, 9}) // not the session key
			b := req.marshal()
			c := rawDial(t, ts.addr)
			mustWrite(t, c, b[:])
			expectRefusal(t, c)
		}},
		{"inconsistent counts", resultBadCounts, func(t *testing.T) {
			w, r := by.c.counts()
			req := reconnectRequest{id: by.c.ID(), writeCount: w, readCount: r + 1} // read more than the server wrote
			req.sign(by.c.key)
			b := req.marshal()
			c := rawDial(t, ts.addr)
			mustWrite(t, c, b[:])
			expectRefusal(t, c)
		}},
		{"reconnect without answering the challenge", "reconnect: session .* wrong challenge answer", func(t *testing.T) {
			// A replay of the bystander's current request gets a challenge it
			// cannot answer; the live transport is untouched meanwhile.
			w, r := by.c.counts()
			req := reconnectRequest{id: by.c.ID(), writeCount: w, readCount: r}
			req.sign(by.c.key)
			b := req.marshal()
			c := rawDial(t, ts.addr)
			mustWrite(t, c, b[:])
			resp, _ := parseReconnectResponse(mustRead(t, c, reconnectResponseLen))
			if resp.refused() {
				t.Fatal("current counts refused")
			}
			by.check(t)
			mustWrite(t, c, make([]byte, proofLen)) // a recorded old answer
			expectClosed(t, c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.Sessions()
			tc.run(t)
			by.check(t)
			if got := ts.Sessions(); got != before {
				t.Fatalf("sessions %d → %d", before, got)
			}
			re := regexp.MustCompile(tc.result)
			if !strings.Contains(tc.result, " ") {
				re = regexp.MustCompile("result=" + tc.result + " ")
			}
			waitFor(t, func() bool { return re.MatchString(ts.log.String()) }, "log "+re.String())
		})
	}
}

func TestReplayedReconnect(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{true: "encrypted", false: "plain"}[encrypt], func(t *testing.T) {
			ts := startServer(t, &ServerOptions{Encrypt: encrypt}, nil)
			var wg sync.WaitGroup
			defer wg.Wait()
			s := rawNewSession(t, ts.addr, encrypt)
			sess := ts.accept(t)
			echo(sess, &wg)
			defer sess.Close()
			s.roundTrip(t, "first")
			req1 := s.request()
			s.reconnect(t, ts.addr, req1)
			s.roundTrip(t, "second")
			req2 := s.request()
			s.reconnect(t, ts.addr, req2)
			s.roundTrip(t, "third")

			// The older captured request is refused outright.
			c := rawDial(t, ts.addr)
			mustWrite(t, c, req1)
			expectRefusal(t, c)
			s.roundTrip(t, "still fine")
			waitFor(t, func() bool { return strings.Contains(ts.log.String(), "result="+resultReplay) }, "replay log")

			// Exactly the same request again (the counts did not move since the
			// last data? they did: req2 is behind too).
			c = rawDial(t, ts.addr)
			mustWrite(t, c, req2)
			expectRefusal(t, c)
			s.roundTrip(t, "and again")
		})
	}
}

func TestSilentClientCutOff(t *testing.T) {
	ts := startServer(t, &ServerOptions{HandshakeTimeout: 300 * time.Millisecond}, nil)
	for _, prefix := range [][]byte{nil, {0x00}, {0x00, 1, 2, 3}, {0xFF, 1, 2}} {
		c := rawDial(t, ts.addr)
		if len(prefix) > 0 {
			mustWrite(t, c, prefix)
		}
		start := time.Now()
		expectClosed(t, c)
		if time.Since(start) > 15*time.Second {
			t.Fatalf("prefix %x: cut after %v", prefix, time.Since(start))
		}
	}
	// A client that stops before answering the challenge.
	c := rawDial(t, ts.addr)
	_, pub, _ := newKeyPair(rand.Reader)
	mustWrite(t, c, appendNewRequest(nil, pub))
	mustRead(t, c, newResponseLen)
	expectClosed(t, c)
	if n := ts.Sessions(); n != 0 {
		t.Fatalf("%d sessions after silent clients", n)
	}
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "result="+resultTimeout) }, "timeout log")
}

func TestSessionLimits(t *testing.T) {
	ts := startServer(t, &ServerOptions{MaxSessionsPerIP: 1}, nil)
	s := rawNewSession(t, ts.addr, false)
	sess := ts.accept(t)
	defer sess.Close()
	c := rawDial(t, ts.addr)
	_, pub, _ := newKeyPair(rand.Reader)
	mustWrite(t, c, appendNewRequest(nil, pub))
	expectClosed(t, c)
	s.send(t, []byte("x"))
	if got := mustRead(t, sess, 1); string(got) != "x" {
		t.Fatal("first session disturbed")
	}
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "result="+resultLimit) }, "limit log")
}

func TestClientServerRoundTrip(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{true: "encrypted", false: "plain"}[encrypt], func(t *testing.T) {
			ts := startServer(t, &ServerOptions{Encrypt: encrypt, ReconnectWait: 500 * time.Millisecond}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := Dial(ctx, "tcp", ts.addr, &DialOptions{Encrypt: encrypt})
			if err != nil {
				t.Fatal(err)
			}
			sess := ts.accept(t)
			if sess.ID() != c.ID() {
				t.Fatalf("ids %d / %d", sess.ID(), c.ID())
			}
			info, ok := SessionInfo(sess)
			if !ok || !info.RemoteAddr.Addr().IsLoopback() || info.Secure {
				t.Fatalf("info %+v %v", info, ok)
			}
			msg := make([]byte, 3<<20)
			_, _ = rand.Read(msg)
			go func() { _, _ = c.Write(msg) }()
			_ = sess.SetReadDeadline(time.Now().Add(20 * time.Second))
			if got := mustRead(t, sess, len(msg)); !bytes.Equal(got, msg) {
				t.Fatal("upstream data corrupted")
			}
			mustWrite(t, sess, []byte("bye"))
			if err := sess.Close(); err != nil {
				t.Fatal(err)
			}
			if err := sess.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second close: %v", err)
			}
			// The client gets the data, then EOF once its reconnect is refused.
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			if string(got) != "bye" || err != nil {
				t.Fatalf("client read %q, %v", got, err)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, ErrSessionLost) {
				t.Fatalf("write after end: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestClientCloseEndsServerSessionAfterWait(t *testing.T) {
	ts := startServer(t, &ServerOptions{ReconnectWait: 200 * time.Millisecond}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess := ts.accept(t)
	mustWrite(t, c, []byte("last words"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_ = sess.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(sess)
	if string(got) != "last words" || err != nil {
		t.Fatalf("server read %q, %v", got, err)
	}
	waitFor(t, func() bool { return ts.Sessions() == 0 }, "session removal")
}

func TestDeadlines(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", ts.addr, &DialOptions{ResendBuffer: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess := ts.accept(t)
	defer sess.Close()
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	// With nobody reading, writes fill the receive side, then the resend
	// buffer, then block until the deadline.
	_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	big := make([]byte, 64<<20)
	n, err := c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == len(big) {
		t.Fatalf("write: %d, %v", n, err)
	}
}

// waitFor polls cond (a state change the test cannot be told about) with a
// generous deadline.
func waitFor(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStaleReconnectLeavesSessionAlone runs two reconnect handshakes of one
// session side by side: the later one attaches and data moves on it; then
// the earlier one answers its challenge. That stale handshake must be
// refused on its own link only, and the session must go on.
func TestStaleReconnectLeavesSessionAlone(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{true: "encrypted", false: "plain"}[encrypt], func(t *testing.T) {
			ts := startServer(t, &ServerOptions{Encrypt: encrypt}, nil)
			var wg sync.WaitGroup
			defer wg.Wait()
			s := rawNewSession(t, ts.addr, encrypt)
			sess := ts.accept(t)
			echo(sess, &wg)
			defer sess.Close()
			s.roundTrip(t, "before")

			// The stale link gets as far as the challenge and stops there.
			stale := rawDial(t, ts.addr)
			mustWrite(t, stale, s.request())
			resp, _ := parseReconnectResponse(mustRead(t, stale, reconnectResponseLen))
			if resp.refused() {
				t.Fatal("first reconnect refused")
			}
			// A newer handshake attaches, and the stream moves on there.
			s.reconnect(t, ts.addr, s.request())
			s.roundTrip(t, "after the newer reconnect")

			// Now the stale link answers its challenge correctly.
			ans := proof(resp.challenge[:], s.key)
			mustWrite(t, stale, ans[:])
			expectClosed(t, stale)
			waitFor(t, func() bool { return strings.Contains(ts.log.String(), "result="+resultStale) }, "stale log")

			s.roundTrip(t, "the session is untouched")
			if strings.Contains(ts.log.String(), "resend buffer overrun") {
				t.Fatalf("the stale handshake ended the session:\n%s", ts.log.String())
			}
		})
	}
}
