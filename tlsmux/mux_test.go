package tlsmux_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/listener/listenertest"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

func get(t *testing.T, c interface {
	Get(string) (*http.Response, error)
}, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlainAndTLSOnOnePort(t *testing.T) {
	s := newStack(t, stackOptions{})
	if got := get(t, httpClient(t, 0, ""), "http://"+s.addr+"/tls"); got != "plain" {
		t.Fatalf("http: %q", got)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		want := "tls " + tls.VersionName(v)
		if got := get(t, httpClient(t, v, ""), "https://"+s.addr+"/tls"); got != want {
			t.Fatalf("https: %q, want %q", got, want)
		}
	}
	if got := s.counter(t, "dualgate_tls_handshakes_total", "version", "TLS 1.3"); got != 1 {
		t.Fatalf("TLS 1.3 handshakes = %v", got)
	}
	if !s.cache.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("client IP not recorded after handshake")
	}
}

// TestWebSocketSeesTLS checks that a wss handler sees r.TLS (through
// ConnContext and Handler) and a ws handler does not, on the same port.
func TestWebSocketSeesTLS(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, tt := range []struct{ url, want string }{
		{"ws://" + s.addr + "/echo", "ws:hi"},
		{"wss://" + s.addr + "/echo", "wss:hi"},
	} {
		c, _, err := websocket.Dial(ctxT(t), tt.url, &websocket.DialOptions{HTTPClient: httpClient(t, 0, "")})
		if err != nil {
			t.Fatalf("dial %s: %v", tt.url, err)
		}
		if err := c.Write(ctxT(t), websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctxT(t))
		if err != nil || string(b) != tt.want {
			t.Fatalf("%s echoed %q, %v; want %q", tt.url, b, err, tt.want)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestACMETLSALPNClosedAfterHandshake(t *testing.T) {
	s := newStack(t, stackOptions{})
	// A browser-like ALPN list gets http/1.1 (the supplied config has none).
	h1 := listenertest.ClientConfig(t, 0)
	h1.NextProtos = []string{"h2", tlsmux.ALPNHTTP1}
	hc, err := tls.DialWithDialer(&net.Dialer{Timeout: testWait}, "tcp", s.addr, h1)
	if err != nil {
		t.Fatal(err)
	}
	if p := hc.ConnectionState().NegotiatedProtocol; p != tlsmux.ALPNHTTP1 {
		t.Fatalf("negotiated %q, want http/1.1", p)
	}
	_ = hc.Close()
	cfg := listenertest.ClientConfig(t, 0)
	cfg.NextProtos = []string{tlsmux.ALPNACMETLS}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testWait}, "tcp", s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != tlsmux.ALPNACMETLS {
		t.Fatalf("negotiated %q", p)
	}
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after acme-tls/1 handshake: %d, %v", n, err)
	}
}

func TestHandshakeFailuresCounted(t *testing.T) {
	s := newStack(t, stackOptions{handshakeTimeout: 300 * time.Millisecond})
	// A record header and then silence: the handshake deadline.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("\x16\x03\x01\x00\x40"))
	waitFor(t, "timeout failure", func() bool {
		return s.counter(t, "dualgate_tls_handshake_failures_total", "reason", tlsmux.FailureTimeout) == 1
	})
	// The rest with a generous handshake deadline: the machine is loaded.
	s = newStack(t, stackOptions{})
	// A client that does not trust the certificate aborts with an alert.
	cfg := listenertest.ClientConfig(t, 0)
	cfg.RootCAs = nil
	if _, err := tls.DialWithDialer(&net.Dialer{Timeout: testWait}, "tcp", s.addr, cfg); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	waitFor(t, "remote-alert failure", func() bool {
		return s.counter(t, "dualgate_tls_handshake_failures_total", "reason", tlsmux.FailureRemoteAlert) == 1
	})
	// A handshake record whose body is not a ClientHello.
	c2, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _ = c2.Write([]byte("\x16\x03\x01\x00\x05hello"))
	waitFor(t, "handshake-error failure", func() bool {
		return s.counter(t, "dualgate_tls_handshake_failures_total", "reason", tlsmux.FailureHandshakeError) == 1
	})
}

// TestAmbiguousAfterRecentHandshake is the ambiguous path end to end: a TLS
// client that stays silent past the sniff deadline succeeds after a recent
// successful handshake from its IP, and fails from a fresh IP.
func TestAmbiguousAfterRecentHandshake(t *testing.T) {
	s := newStack(t, stackOptions{sniffTimeout: 200 * time.Millisecond})
	// The recent handshake. On a loaded machine a client may itself be slower
	// than the short deadline (and then rightly go to plain HTTP), so retry.
	for attempt := 1; ; attempt++ {
		resp, err := httpClient(t, 0, "127.0.0.1").Get("https://" + s.addr + "/tls")
		if err == nil {
			resp.Body.Close()
			break
		}
		if attempt == 5 {
			t.Fatalf("first https: %v", err)
		}
	}
	if !s.cache.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("handshake not recorded")
	}
	before := map[string]float64{}
	for _, o := range []string{listener.OutcomeAmbiguousViaCache, listener.OutcomeAmbiguousToPlain} {
		before[o] = s.counter(t, "dualgate_listener_sniff_outcomes_total", "outcome", o)
	}
	silentTLS := func(from string, waitOutcome string) error {
		d := net.Dialer{Timeout: testWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		raw, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		waitFor(t, waitOutcome, func() bool {
			return s.counter(t, "dualgate_listener_sniff_outcomes_total", "outcome", waitOutcome) > before[waitOutcome]
		})
		tc := tls.Client(raw, listenertest.ClientConfig(t, 0))
		if err := tc.HandshakeContext(ctxT(t)); err != nil {
			return err
		}
		_, _ = tc.Write([]byte("GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		_ = tc.SetReadDeadline(time.Now().Add(testWait))
		b, _ := io.ReadAll(tc)
		if !strings.Contains(string(b), "tls TLS 1.3") {
			t.Fatalf("response %q", b)
		}
		return nil
	}
	if err := silentTLS("127.0.0.1", listener.OutcomeAmbiguousViaCache); err != nil {
		t.Fatalf("silent TLS client from a recent IP: %v", err)
	}
	if err := silentTLS("127.0.0.2", listener.OutcomeAmbiguousToPlain); err == nil {
		t.Fatal("silent TLS client from a fresh IP succeeded")
	}
}

// TestPlainHTTPSentToTLSIsAnswered covers a slow plain client from an IP
// with a recent TLS handshake: the ambiguous fallback sends it to TLS, and
// it gets net/http's "HTTP request to an HTTPS server" answer, not a reset.
func TestPlainHTTPSentToTLSIsAnswered(t *testing.T) {
	s := newStack(t, stackOptions{sniffTimeout: 100 * time.Millisecond})
	s.cache.Add(netip.MustParseAddr("127.0.0.4"))
	d := net.Dialer{Timeout: testWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "ambiguous via cache", func() bool {
		return s.counter(t, "dualgate_listener_sniff_outcomes_total", "outcome", listener.OutcomeAmbiguousViaCache) == 1
	})
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.0 400 ") || !strings.Contains(string(b), "HTTPS server") {
		t.Fatalf("answer %q", b)
	}
	if v := s.counter(t, "dualgate_tls_handshake_failures_total", "reason", tlsmux.FailureNotTLS); v != 1 {
		t.Fatalf("not-tls failures = %v", v)
	}
}

func TestStreamAndLegacyInsideTLS(t *testing.T) {
	s := newStack(t, stackOptions{kinds: []sniff.Kind{sniff.KindHTTP, sniff.KindStream, sniff.KindLegacy}})
	for _, tt := range []struct {
		kind sniff.Kind
		send string
	}{{sniff.KindStream, "DGS1\x00\x03abc"}, {sniff.KindLegacy, "\xff\x01"}} {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: testWait}, "tcp", s.addr, listenertest.ClientConfig(t, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if _, err := tc.Write([]byte(tt.send)); err != nil {
			t.Fatal(err)
		}
		c, err := s.mux.For(tt.kind).Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := make([]byte, len(tt.send))
		_ = c.SetReadDeadline(time.Now().Add(testWait))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != tt.send {
			t.Fatalf("%s read %q, %v", tt.kind, b, err)
		}
		if st, ok := tlsmux.ConnectionState(c); !ok || !st.HandshakeComplete {
			t.Fatalf("ConnectionState: %v", ok)
		}
		if got := listener.ClientAddr(c).String(); got != tc.LocalAddr().String() {
			t.Fatalf("ClientAddr %s, want %s", got, tc.LocalAddr())
		}
		if lc, ok := listener.Unwrap(c); !ok || lc.Kind() != tt.kind {
			t.Fatalf("Unwrap: %v", ok)
		}
	}
}

func TestCloseMidHandshakeLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, ignoreExpirableLRU)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(inner, &listener.Options{SniffTimeout: time.Minute})
	mux := tlsmux.New(l.For(sniff.KindTLS), listenertest.ServerConfig(t), &tlsmux.Options{HandshakeTimeout: time.Minute})
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("\x16\x03\x01\x00\x40")) // mid-handshake
		conns = append(conns, c)
	}
	waitFor(t, "handshakes in progress", func() bool { return l.Sniffing() == 0 && l.OpenConns() == 20 })
	errc := make(chan error, 1)
	go func() { _, err := mux.For(sniff.KindHTTP).Accept(); errc <- err }()
	if err := mux.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(testWait))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection mid-handshake not closed")
			}
		}
	}
}
