package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"
)

// rawTransport opens a byte-stream transport to the test server.
func rawTransport(tb testing.TB, ts *testServer) *streamTransport {
	tb.Helper()
	c, err := net.Dial("tcp", ts.tcp.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Write([]byte(StreamPreamble)); err != nil {
		tb.Fatal(err)
	}
	t := newStreamTransport(c)
	tb.Cleanup(func() { t.Close(0, "") })
	return t
}

type rawSession struct {
	id     [sessionIDLen]byte
	secret []byte
	t      *streamTransport
	res    handshakeResult
}

// rawNew runs a first handshake and CONFIRM by hand.
func rawNew(tb testing.TB, ts *testServer, pat Pattern) *rawSession {
	tb.Helper()
	ctx := ctxT(tb)
	t := rawTransport(tb, ts)
	var pinned []byte
	if pat == PatternNK {
		pinned = ts.key.Public()
	}
	ch, msg1, err := startClientHandshake(clientHello{version: 1, suite: SuiteChaChaPoly, pattern: pat}, helloPayload{window: DefaultWindow}, nil, pinned, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if err := t.WriteMessage(ctx, msg1); err != nil {
		tb.Fatal(err)
	}
	msg2, err := t.ReadMessage(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	sp, res, err := ch.readServerHello(msg2)
	if err != nil {
		tb.Fatal(err)
	}
	rs := &rawSession{id: sp.sessionID, t: t, res: res}
	rs.secret, _ = deriveResumeSecret(res.hash)
	rs.send(tb, &frame{typ: frameConfirm})
	return rs
}

func (rs *rawSession) send(tb testing.TB, f *frame) {
	tb.Helper()
	ct, err := sealFrame(rs.res.send, nil, appendFrame(nil, f))
	if err != nil {
		tb.Fatal(err)
	}
	if err := rs.t.WriteMessage(ctxT(tb), ct); err != nil {
		tb.Fatal(err)
	}
}

// resumeMsg builds a resume client hello.
func resumeMsg(tb testing.TB, id [sessionIDLen]byte, secret []byte, counter uint64, pinned []byte) (*clientHandshake, []byte) {
	tb.Helper()
	pat := PatternNN
	if pinned != nil {
		pat = PatternNK
	}
	ch, msg, err := startClientHandshake(clientHello{version: 1, suite: SuiteChaChaPoly, pattern: pat, resume: true, sessionID: id},
		helloPayload{window: DefaultWindow, counter: counter}, secret, pinned, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return ch, msg
}

// exchange sends msg on a new transport and returns the server's answer.
func exchange(tb testing.TB, ts *testServer, msg []byte) (*streamTransport, []byte) {
	tb.Helper()
	t := rawTransport(tb, ts)
	ctx := ctxT(tb)
	if err := t.WriteMessage(ctx, msg); err != nil {
		tb.Fatal(err)
	}
	ans, err := t.ReadMessage(ctx)
	if err != nil {
		tb.Fatalf("no answer: %v", err)
	}
	return t, append([]byte(nil), ans...)
}

func wantRefuse(tb testing.TB, ans []byte, code CloseCode) {
	tb.Helper()
	ce, err := parseRefuse(ans)
	if err != nil {
		tb.Fatalf("want refuse %d, got %x (%v)", code, ans, err)
	}
	if ce.Code != code {
		tb.Fatalf("refused with %d (%s), want %d", ce.Code, ce.Reason, code)
	}
}

func TestSecurityReplayedResume(t *testing.T) {
	ts := newTestServer(t, nil)
	rs := rawNew(t, ts, PatternNN)
	ts.acceptOne(t)
	ch, msg := resumeMsg(t, rs.id, rs.secret, 1, nil)
	t2, ans := exchange(t, ts, msg)
	if _, _, err := ch.readServerHello(ans); err != nil {
		t.Fatalf("genuine resume: %v", err)
	}
	// The captured hello replayed on a new transport is refused.
	_, ans = exchange(t, ts, msg)
	wantRefuse(t, ans, CloseReplayedResume)
	t2.Close(0, "")
}

func TestSecurityWrongProof(t *testing.T) {
	ts := newTestServer(t, nil)
	rs := rawNew(t, ts, PatternNK)
	ts.acceptOne(t)
	bad := bytes.Clone(rs.secret)
	bad[0] ^= 1
	_, msg := resumeMsg(t, rs.id, bad, 1, ts.key.Public())
	_, ans := exchange(t, ts, msg)
	wantRefuse(t, ans, CloseProofFailed)
}

func TestSecurityForgedSessionID(t *testing.T) {
	ts := newTestServer(t, nil)
	rs := rawNew(t, ts, PatternNN)
	ts.acceptOne(t)
	id := rs.id
	id[15] ^= 0x80
	_, msg := resumeMsg(t, id, rs.secret, 1, nil)
	_, ans := exchange(t, ts, msg)
	wantRefuse(t, ans, CloseUnknownSession)
}

func TestSecurityTamperedCiphertext(t *testing.T) {
	ts := newTestServer(t, nil)
	rs := rawNew(t, ts, PatternNN)
	sc := ts.acceptOne(t)
	// A tampered resume hello (payload ciphertext or the authenticated
	// header) does not authenticate.
	for _, pos := range []int{-1, 3 /* suite byte: prologue */} {
		_, msg := resumeMsg(t, rs.id, rs.secret, 1, nil)
		if pos < 0 {
			msg[len(msg)-1] ^= 1
		} else {
			msg[pos] = byte(SuiteAESGCM)
		}
		_, ans := exchange(t, ts, msg)
		wantRefuse(t, ans, CloseProofFailed)
	}
	// A tampered transport message ends that transport only.
	ct, _ := sealFrame(rs.res.send, nil, appendFrame(nil, &frame{typ: frameData, flags: flagFIN, payload: []byte("evil")}))
	ct[len(ct)-3] ^= 1
	if err := rs.t.WriteMessage(ctxT(t), ct); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.t.ReadMessage(ctxT(t)); err == nil {
		t.Fatal("transport with a tampered message stayed open")
	}
	// The session survives and resumes; nothing was delivered.
	ch, msg := resumeMsg(t, rs.id, rs.secret, 5, nil)
	_, ans := exchange(t, ts, msg)
	sp, _, err := ch.readServerHello(ans)
	if err != nil || sp.delivered != 0 {
		t.Fatalf("resume after tampering: %+v %v", sp, err)
	}
	sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := sc.Read(make([]byte, 10)); !errors.Is(err, errDeadline) {
		t.Fatalf("tampered data delivered: %d %v", n, err)
	}
}

func TestSecurityPinnedKeyMITM(t *testing.T) {
	ts := newTestServer(t, nil) // the "man in the middle": a gateway with another key
	real, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{ts.tcpURL(), ts.wsURL()} {
		_, err := Dial(ctxT(t), url, fastDial(real.PublicString()))
		if CloseStatus(err) != CloseServerKeyMismatch {
			t.Fatalf("%s: want %d, got %v", url, CloseServerKeyMismatch, err)
		}
	}
	// An active attacker that answers with its own handshake is detected by
	// the client too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		readPreamble(c)
		st := newStreamTransport(c)
		msg, err := st.ReadMessage(context.Background())
		if err != nil {
			return
		}
		hello, _ := parseClientHello(msg)
		hello.pattern = PatternNN // the attacker cannot do NK with the real key
		fake, _ := NewKey(make([]byte, 32))
		cfg, _ := noiseConfig(&hello, false, nil, &fake.kp, nil, rand.Reader)
		_ = cfg
		e := make([]byte, 1+32+32+16)
		e[0] = msgServerHello
		rand.Read(e[1:])
		st.WriteMessage(context.Background(), e)
		st.ReadMessage(context.Background())
	}()
	_, err = Dial(ctxT(t), "tcp://"+ln.Addr().String(), fastDial(real.PublicString()))
	if CloseStatus(err) != CloseServerKeyMismatch {
		t.Fatalf("active MITM: want %d, got %v", CloseServerKeyMismatch, err)
	}
	ln.Close()
	<-done
}

func TestRefusals(t *testing.T) {
	k, _ := GenerateKey()
	o := fastOpts(k)
	o.MaxSessionsPerIP = 1
	o.DetachedTTL = 300 * time.Millisecond
	ts := newTestServer(t, o)
	c, err := Dial(ctxT(t), ts.tcpURL(), fastDial(""))
	if err != nil {
		t.Fatal(err)
	}
	ts.acceptOne(t)
	if _, err := Dial(ctxT(t), ts.wsURL(), fastDial("")); CloseStatus(err) != CloseTooManyFromAddress {
		t.Fatalf("per-IP limit: %v", err)
	}
	_, ans := exchange(t, ts, []byte{msgClientHello, 9, 1, 1, 0})
	wantRefuse(t, ans, CloseUnsupportedVersion)
	if ce, _ := parseRefuse(ans); ce.Reason != "versions=1" {
		t.Fatalf("version reason %q", ce.Reason)
	}
	_, ans = exchange(t, ts, append([]byte{msgClientHello, 1, 7, 1, 0}, make([]byte, 36)...))
	wantRefuse(t, ans, CloseUnsupportedSuite)
	_, ans = exchange(t, ts, []byte{msgClientHello, 1})
	wantRefuse(t, ans, CloseProtocolError)
	// An expired session is refused with 4001.
	id, secret := c.s.id, c.s.secret
	c.s.cl.stop() // the client stops reconnecting; the server's copy expires
	ts.srv.mu.Lock()
	sess := ts.srv.sessions[id]
	ts.srv.mu.Unlock()
	sess.mu.Lock()
	if sess.link != nil {
		sess.link.shut(CloseTransportDead, "")
	}
	sess.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts.srv.mu.Lock()
		gone := ts.srv.sessions[id] == nil
		ts.srv.mu.Unlock()
		if gone || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, msg := resumeMsg(t, id, secret, 99, nil)
	_, ans = exchange(t, ts, msg)
	wantRefuse(t, ans, CloseSessionExpired)
	c.Close()
}

func TestMaxSessions(t *testing.T) {
	k, _ := GenerateKey()
	o := fastOpts(k)
	o.MaxSessions = 1
	ts := newTestServer(t, o)
	c, err := Dial(ctxT(t), ts.tcpURL(), fastDial(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := ts.acceptOne(t)
	defer sc.Close()
	if _, err := Dial(ctxT(t), ts.tcpURL(), fastDial("")); CloseStatus(err) != CloseTooManySessions {
		t.Fatalf("want 4006, got %v", err)
	}
}
