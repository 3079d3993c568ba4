package listener_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/listener/listenertest"
	"github.com/dualgate/dualgate/sniff"
)

func TestKindsReplayPeekedBytes(t *testing.T) {
	tl := newTestListener(t, &listener.Options{Kinds: sniff.Kinds()})
	tests := []struct {
		name string
		kind sniff.Kind
		send string
	}{
		{"http", sniff.KindHTTP, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"stream", sniff.KindStream, "DGS1\x00\x05hello"},
		{"legacy new", sniff.KindLegacy, "\x00session"},
		{"legacy reconnect", sniff.KindLegacy, "\xffagain"},
		{"tls", sniff.KindTLS, "\x16\x03\x01\x00\x05hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, tl.addr)
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			sc := accept(t, tl.Listener, tt.kind)
			if sc.Kind() != tt.kind || sc.Ambiguous() || sc.Proxied() {
				t.Fatalf("kind %v ambiguous %v proxied %v", sc.Kind(), sc.Ambiguous(), sc.Proxied())
			}
			if got := readN(t, sc, len(tt.send)); string(got) != tt.send {
				t.Fatalf("replayed %q, want %q", got, tt.send)
			}
			// The rest of the stream and the reverse direction are untouched.
			if _, err := c.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, sc, 4); string(got) != "more" {
				t.Fatalf("then read %q", got)
			}
			if _, err := sc.Write([]byte("back")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, 4); string(got) != "back" {
				t.Fatalf("client read %q", got)
			}
			if want := c.LocalAddr().String(); sc.RemoteAddr().String() != want || listener.ClientAddr(sc).String() != want {
				t.Fatalf("RemoteAddr %v, ClientAddr %v, want %v", sc.RemoteAddr(), listener.ClientAddr(sc), want)
			}
		})
	}
	if got := tl.outcomes(t, listener.OutcomeClassified); got != float64(len(tests)) {
		t.Fatalf("classified outcomes = %v, want %d", got, len(tests))
	}
}

func TestCloseWriteAndDeadlinesPassThrough(t *testing.T) {
	tl := newTestListener(t, nil)
	c := dial(t, tl.addr)
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	sc := accept(t, tl.Listener, sniff.KindHTTP)
	readN(t, sc, 16)
	// A read deadline set on the wrapper reaches the socket.
	_ = sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := sc.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read after deadline: %v", err)
	}
	_ = sc.SetReadDeadline(time.Time{})
	// CloseWrite: the client sees EOF, the server can still read.
	if _, err := sc.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := sc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Fatalf("client read %q, %v", b, err)
	}
	if _, err := c.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, 5); string(got) != "still" {
		t.Fatalf("server read %q", got)
	}
}

func TestRejections(t *testing.T) {
	tl := newTestListener(t, &listener.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	tests := []struct {
		name   string
		from   string
		send   string
		reason string
	}{
		{"sslv2 hello", "", "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", string(sniff.ReasonSSLv2)},
		{"h2c preface", "", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", string(sniff.ReasonH2CPreface)},
		{"garbage", "", "SSH-2.0-OpenSSH_9.6\r\n", string(sniff.ReasonGarbage)},
		{"legacy disabled", "", "\x00\x01", listener.ReasonKindDisabled},
		{"untrusted proxy v1", "127.0.0.3", "PROXY TCP4 192.0.2.1 192.0.2.2 1000 443\r\nGET / HTTP/1.1\r\n\r\n", string(sniff.ReasonProxyHeader)},
		{"invalid proxy v1 from trusted", "127.0.0.1", "PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\n\r\n", listener.ReasonInvalidProxyHeader},
		{"eof", "", "", listener.ReasonClosedEarly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tl.rejections(t, tt.reason)
			c := dialFrom(t, tt.from, tl.addr)
			if tt.send == "" {
				_ = c.(*net.TCPConn).CloseWrite()
			} else if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			waitFor(t, "rejection "+tt.reason, func() bool { return tl.rejections(t, tt.reason) == before+1 })
		})
	}
}

func TestClientHelloOneByteAtATime(t *testing.T) {
	tl := newTestListener(t, nil)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			raw := dial(t, tl.addr)
			errc := make(chan error, 1)
			go func() {
				tc := tls.Client(listenertest.OneByteConn{Conn: raw}, listenertest.ClientConfig(t, version))
				errc <- tc.HandshakeContext(ctxT(t))
			}()
			sc := accept(t, tl.Listener, sniff.KindTLS)
			ts := tls.Server(sc, listenertest.ServerConfig(t))
			if err := ts.HandshakeContext(ctxT(t)); err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if ts.ConnectionState().Version != version {
				t.Fatalf("version %x", ts.ConnectionState().Version)
			}
		})
	}
}

func TestAmbiguousFallback(t *testing.T) {
	cache := sniff.NewIPCache(16, time.Minute)
	cache.Add(netip.MustParseAddr("127.0.0.1"))
	tl := newTestListener(t, &listener.Options{SniffTimeout: 100 * time.Millisecond, IPCache: cache})

	// A cached IP that stays silent goes to TLS ...
	c := dialFrom(t, "127.0.0.1", tl.addr)
	sc := accept(t, tl.Listener, sniff.KindTLS)
	if !sc.Ambiguous() {
		t.Fatal("not marked ambiguous")
	}
	// ... and its late ClientHello then completes the handshake.
	errc := make(chan error, 1)
	go func() { errc <- tls.Client(c, listenertest.ClientConfig(t, 0)).HandshakeContext(ctxT(t)) }()
	if err := tls.Server(sc, listenertest.ServerConfig(t)).HandshakeContext(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// A fresh IP goes to plain HTTP.
	dialFrom(t, "127.0.0.2", tl.addr)
	if sc := accept(t, tl.Listener, sniff.KindHTTP); !sc.Ambiguous() {
		t.Fatal("not marked ambiguous")
	}
	if v := tl.outcomes(t, listener.OutcomeAmbiguousViaCache); v != 1 {
		t.Fatalf("ambiguous_via_cache = %v", v)
	}
	if v := tl.outcomes(t, listener.OutcomeAmbiguousToPlain); v != 1 {
		t.Fatalf("ambiguous_to_plain = %v", v)
	}
}

func TestPartialThenSilentIsRejected(t *testing.T) {
	tl := newTestListener(t, &listener.Options{SniffTimeout: 100 * time.Millisecond})
	c := dial(t, tl.addr)
	_, _ = c.Write([]byte("GE"))
	expectClosed(t, c)
	waitFor(t, "sniff-timeout", func() bool { return tl.rejections(t, listener.ReasonSniffTimeout) == 1 })
}

func TestLimits(t *testing.T) {
	t.Run("per ip", func(t *testing.T) {
		tl := newTestListener(t, &listener.Options{MaxConnsPerIP: 2})
		var conns []net.Conn
		for range 2 {
			c := dial(t, tl.addr)
			_, _ = c.Write([]byte("GET "))
			accept(t, tl.Listener, sniff.KindHTTP)
			conns = append(conns, c)
		}
		over := dial(t, tl.addr)
		_, _ = over.Write([]byte("GET "))
		expectClosed(t, over)
		if v := tl.rejections(t, listener.ReasonMaxConnsPerIP); v != 1 {
			t.Fatalf("max-conns-per-ip = %v", v)
		}
		// Another IP is not affected.
		other := dialFrom(t, "127.0.0.5", tl.addr)
		_, _ = other.Write([]byte("GET "))
		accept(t, tl.Listener, sniff.KindHTTP)
		_ = other
		_ = conns
	})
	t.Run("global, released on close", func(t *testing.T) {
		tl := newTestListener(t, &listener.Options{MaxConns: 1})
		c := dial(t, tl.addr)
		_, _ = c.Write([]byte("GET "))
		sc := accept(t, tl.Listener, sniff.KindHTTP)
		over := dial(t, tl.addr)
		expectClosed(t, over)
		if v := tl.rejections(t, listener.ReasonMaxConns); v != 1 {
			t.Fatalf("max-conns = %v", v)
		}
		_ = sc.Close()
		waitFor(t, "release", func() bool { return tl.OpenConns() == 0 })
		again := dial(t, tl.addr)
		_, _ = again.Write([]byte("GET "))
		accept(t, tl.Listener, sniff.KindHTTP)
	})
}

func TestCloseMidSniffLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, ignoreExpirableLRU)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(inner, &listener.Options{SniffTimeout: time.Minute})
	const n = 50
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, inner.Addr().String())
	}
	_, _ = conns[0].Write([]byte("GE")) // one mid-request-line
	waitFor(t, "sniffing", func() bool { return l.Sniffing() == n })
	acceptErr := make(chan error, sniff.NumKinds)
	for _, k := range sniff.Kinds() {
		go func() {
			_, err := l.For(k).Accept()
			acceptErr <- err
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for range sniff.Kinds() {
		if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	}
	for _, c := range conns {
		expectClosed(t, c)
	}
	if l.OpenConns() != 0 {
		t.Fatalf("open conns after close: %d", l.OpenConns())
	}
}

// flakyListener wraps a real listener and fails its first Accept calls with
// a temporary error, as EMFILE does.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

type tempErr struct{}

func (tempErr) Error() string   { return "accept: too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return nil, tempErr{}
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func TestAcceptBacksOffAndRecovers(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(&flakyListener{Listener: inner, fails: 4}, nil)
	t.Cleanup(func() { _ = l.Close() })
	c := dial(t, inner.Addr().String())
	_, _ = c.Write([]byte("GET "))
	accept(t, l, sniff.KindHTTP)
}

func TestInnerClosedUnblocksAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(inner, nil)
	defer l.Close()
	_ = inner.Close()
	if _, err := l.For(sniff.KindHTTP).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept = %v", err)
	}
}

func TestForDisabledKind(t *testing.T) {
	tl := newTestListener(t, nil)
	if _, err := tl.For(sniff.KindLegacy).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept of disabled kind = %v", err)
	}
	if tl.For(sniff.KindHTTP).Addr().String() != tl.addr {
		t.Fatal("Addr mismatch")
	}
}

// TestHeavySilentConnections opens many silent connections and checks that
// a real HTTP client is served while every one of them is still being
// sniffed, and that all of them leave the sniff stage (ambiguous, to plain
// HTTP) once the deadline passes.
func TestHeavySilentConnections(t *testing.T) {
	n := testenv.Scale(2000, 400)
	const sniffTimeout = 5 * time.Second
	tl := newTestListener(t, &listener.Options{SniffTimeout: sniffTimeout, MaxConnsPerIP: -1, MaxSniffing: n + 16, Backlog: n + 16})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}), ReadHeaderTimeout: testWait}
	// The silent ones end up on this HTTP server too; count them there.
	go func() { _ = srv.Serve(tl.For(sniff.KindHTTP)) }()
	t.Cleanup(func() { _ = srv.Close() })

	start := time.Now()
	silent := make([]net.Conn, n)
	for i := range silent {
		silent[i] = dial(t, tl.addr)
	}
	waitFor(t, "all silent conns sniffing", func() bool { return tl.Sniffing() >= n })
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testWait}
	resp, err := client.Get("http://" + tl.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The real client was served while every silent connection was still
	// waiting in the sniff stage: it was not queued behind them.
	stillSniffing := tl.Sniffing()
	if string(body) != "ok" || stillSniffing < n && time.Since(start) < sniffTimeout {
		t.Fatalf("body %q, still sniffing %d of %d", body, stillSniffing, n)
	}
	waitFor(t, "silent conns leave sniffing", func() bool {
		return tl.outcomes(t, listener.OutcomeAmbiguousToPlain) == float64(n)
	})
	if tl.Sniffing() != 0 {
		t.Fatalf("still sniffing %d", tl.Sniffing())
	}
	if elapsed := time.Since(start); elapsed < sniffTimeout {
		t.Fatalf("silent conns left sniffing after %v, before the %v deadline", elapsed, sniffTimeout)
	}
}
