package resume

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dualgate/dualgate/resume/resumetest"
)

func dialPair(tb testing.TB, ts *testServer, url string, o *DialOptions) (*Conn, *Conn) {
	tb.Helper()
	if o == nil {
		o = fastDial("")
	}
	c, err := Dial(ctxT(tb), url, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.CloseWithError(CloseNormal, "") })
	sc := ts.acceptOne(tb)
	tb.Cleanup(func() { sc.CloseWithError(CloseNormal, "") })
	return c, sc
}

func TestDeadlineIsTimeoutNotReconnect(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a timeout, got %v", err)
	}
	if st := c.State(); st != StateConnected {
		t.Fatalf("deadline changed the state to %v", st)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := sc.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after" {
		t.Fatalf("%q %v", buf, err)
	}
	ts.srv.mu.Lock()
	n := len(ts.srv.sessions)
	ts.srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

func TestBackpressure(t *testing.T) {
	k, _ := GenerateKey()
	o := fastOpts(k)
	o.Window = MinWindow
	ts := newTestServer(t, o)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	total := 0
	var err error
	for err == nil {
		var n int
		n, err = c.Write(make([]byte, 4096))
		total += n
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write ended with %v", err)
	}
	if total != MinWindow {
		t.Fatalf("wrote %d bytes into a window of %d", total, MinWindow)
	}
	c.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 3*MinWindow))
		done <- err
	}()
	if _, err := io.ReadFull(sc, make([]byte, 4*MinWindow)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBlackholeResumes(t *testing.T) {
	ts := newTestServer(t, nil)
	p := resumetest.NewProxy(t, ts.tcp.Addr().String())
	o := fastDial("")
	o.PingInterval, o.DeadTimeout = 100*time.Millisecond, 600*time.Millisecond
	var mu sync.Mutex
	var states []State
	o.OnStateChange = func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() }
	c, sc := dialPair(t, ts, "tcp://"+p.Addr(), o)
	if _, err := c.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sc, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if p.BlackholeRandom(1) != 1 {
		t.Fatal("nothing to blackhole")
	}
	// Written into the black hole: must arrive after the resume.
	if _, err := c.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Write([]byte("three")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(sc, buf[:3]); err != nil || string(buf[:3]) != "two" {
		t.Fatalf("%q %v", buf, err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "three" {
		t.Fatalf("%q %v", buf, err)
	}
	// OnStateChange runs on a goroutine of its own: the resumed bytes can
	// overtake the notification of the state that carried them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		ok, seen := containsSeq(states, StateDetached, StateConnected), slices.Clone(states)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %v", seen)
		}
	}
}

func containsSeq(s []State, a, b State) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == a && s[i+1] == b {
			return true
		}
	}
	return false
}

func TestMessagesAcrossResume(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, url := range []string{"tcp", "ws"} {
		t.Run(url, func(t *testing.T) {
			target := ts.tcp.Addr().String()
			if url == "ws" {
				target = ts.http.Listener.Addr().String()
			}
			p := resumetest.NewProxy(t, target)
			p.SetBudget(func() int64 { return 20000 + rand.Int64N(200000) })
			c, sc := dialPair(t, ts, url+"://"+p.Addr()+"/m", nil)
			type msg struct {
				typ MessageType
				b   []byte
			}
			var msgs []msg
			for i := 0; i < 200; i++ {
				m := msg{typ: MessageBinary, b: make([]byte, 1+rand.IntN(1+rand.IntN(100000)))}
				for j := range m.b {
					m.b[j] = byte(rand.Uint32())
				}
				if i%3 == 0 {
					m.typ, m.b = MessageText, bytes.Repeat([]byte("é"), 1+rand.IntN(5000))
				}
				msgs = append(msgs, m)
			}
			errc := make(chan error, 1)
			go func() {
				for _, m := range msgs {
					if err := c.WriteMessage(ctxT(t), m.typ, m.b); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for i, m := range msgs {
				typ, b, err := sc.ReadMessage(ctxT(t))
				if err != nil || typ != m.typ || !bytes.Equal(b, m.b) {
					t.Fatalf("message %d: %v %d bytes (want %v %d): %v", i, typ, len(b), m.typ, len(m.b), err)
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if _, killed, _ := p.Stats(); killed == 0 {
				t.Fatal("no transport was killed")
			}
		})
	}
}

func TestShutdownDrains(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.wsURL(), nil)
	// Written (buffered, the window is 256 KiB) but not yet delivered when
	// the drain starts: it must all arrive before the 1001.
	data := bytes.Repeat([]byte("x"), 250<<10)
	if _, err := sc.Write(data); err != nil {
		t.Fatal(err)
	}
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- ts.srv.Shutdown(ctxT(t)) }()
	got, err := io.ReadAll(c)
	if CloseStatus(err) != CloseGoingAway || len(got) != len(data) {
		t.Fatalf("read %d bytes then %v", len(got), err)
	}
	if err := <-shutdownErr; err != nil {
		t.Fatal(err)
	}
	if _, err := ts.srv.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after shutdown: %v", err)
	}
}

func TestCloseWithCode(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	go sc.CloseWithError(CloseUpstreamClosed, "upstream went away")
	_, err := c.Read(make([]byte, 1))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseUpstreamClosed || ce.Reason != "upstream went away" {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client session did not end")
	}
}

func TestDetachedSessionHasNoGoroutines(t *testing.T) {
	ts := newTestServer(t, nil)
	const n = 50
	var raws []*rawSession
	for i := 0; i < n; i++ {
		raws = append(raws, rawNew(t, ts, PatternNN))
		ts.acceptOne(t)
	}
	waitDetached := func(want int) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			cnt := 0
			ts.srv.mu.Lock()
			list := make([]*session, 0, len(ts.srv.sessions))
			for _, s := range ts.srv.sessions {
				list = append(list, s)
			}
			ts.srv.mu.Unlock()
			for _, s := range list {
				s.mu.Lock()
				if s.state == StateDetached {
					cnt++
				}
				s.mu.Unlock()
			}
			if cnt == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d detached, want %d", cnt, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	before := runtime.NumGoroutine()
	for _, r := range raws {
		r.t.Close(0, "")
	}
	waitDetached(n)
	time.Sleep(50 * time.Millisecond)
	after := runtime.NumGoroutine()
	// Each attached transport had its serving goroutine; detached sessions have none.
	if before-after < n {
		t.Fatalf("goroutines %d -> %d after detaching %d sessions", before, after, n)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode(), err)
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || k2.PublicString() != k1.PublicString() {
		t.Fatalf("reloaded key differs: %v", err)
	}
	pub, err := ParsePublicKey(k1.PublicString())
	if err != nil || !bytes.Equal(pub, k1.Public()) || len(k1.PublicString()) != 43 {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if _, err := ParsePublicKey("short"); err == nil {
		t.Fatal("bad key accepted")
	}
	os.WriteFile(p, []byte("garbage"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
