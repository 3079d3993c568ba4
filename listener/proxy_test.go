package listener_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

var trustedLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

func proxyHeader(tb testing.TB, version byte, src string) []byte {
	tb.Helper()
	srcAP := netip.MustParseAddrPort(src)
	dst := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 200), Port: 8443}
	if srcAP.Addr().Is6() {
		dst = &net.TCPAddr{IP: net.ParseIP("2001:db8::200"), Port: 8443}
	}
	b, err := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(srcAP), dst).Format()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestProxyHeaderTrusted round-trips PROXY v1 and v2 headers from a trusted
// peer: the client address they carry is what RemoteAddr, ClientAddr and
// the per-IP limit see.
func TestProxyHeaderTrusted(t *testing.T) {
	tl := newTestListener(t, &listener.Options{TrustedProxies: trustedLoopback, MaxConnsPerIP: 1})
	for _, tt := range []struct {
		version byte
		src     string
	}{{1, "192.0.2.10:40000"}, {2, "192.0.2.11:40001"}, {1, "[2001:db8::10]:40002"}, {2, "[2001:db8::11]:40003"}} {
		t.Run(tt.src, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", tl.addr)
			req := "GET / HTTP/1.1\r\n\r\n"
			if _, err := c.Write(append(proxyHeader(t, tt.version, tt.src), req...)); err != nil {
				t.Fatal(err)
			}
			sc := accept(t, tl.Listener, sniff.KindHTTP)
			if !sc.Proxied() || sc.ClientAddr().String() != tt.src || sc.RemoteAddr().String() != tt.src {
				t.Fatalf("proxied %v client %v remote %v, want %v", sc.Proxied(), sc.ClientAddr(), sc.RemoteAddr(), tt.src)
			}
			if sc.PeerAddr().String() != c.LocalAddr().String() {
				t.Fatalf("PeerAddr %v", sc.PeerAddr())
			}
			if got := readN(t, sc, len(req)); string(got) != req {
				t.Fatalf("after header read %q", got)
			}
			// The per-IP limit (1) applies to the proxied client, not to the proxy.
			c2 := dialFrom(t, "127.0.0.1", tl.addr)
			_, _ = c2.Write(append(proxyHeader(t, tt.version, tt.src), req...))
			expectClosed(t, c2)
		})
	}
	if v := tl.rejections(t, listener.ReasonMaxConnsPerIP); v != 4 {
		t.Fatalf("max-conns-per-ip = %v, want 4", v)
	}
	// A trusted peer may also connect without a header.
	c := dialFrom(t, "127.0.0.1", tl.addr)
	_, _ = c.Write([]byte("DGS1"))
	if sc := accept(t, tl.Listener, sniff.KindStream); sc.Proxied() || sc.ClientAddr().String() != c.LocalAddr().String() {
		t.Fatalf("headerless trusted conn: proxied %v client %v", sc.Proxied(), sc.ClientAddr())
	}
}

func TestProxyHeaderUntrusted(t *testing.T) {
	tl := newTestListener(t, &listener.Options{TrustedProxies: trustedLoopback})
	for _, version := range []byte{1, 2} {
		c := dialFrom(t, "127.0.0.9", tl.addr)
		_, _ = c.Write(append(proxyHeader(t, version, "192.0.2.10:1234"), "GET / HTTP/1.1\r\n\r\n"...))
		expectClosed(t, c)
	}
	waitFor(t, "two rejections", func() bool { return tl.rejections(t, string(sniff.ReasonProxyHeader)) == 2 })
}

// pipeConn is one end of net.Pipe that reports a loopback peer address.
type pipeConn struct{ net.Conn }

func (pipeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }

func classifyBytes(tb testing.TB, l *listener.Listener, in []byte) (sniff.Kind, netip.AddrPort, bool, string) {
	tb.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.SetWriteDeadline(time.Now().Add(testWait))
		_, _ = client.Write(in)
		_ = client.Close()
	}()
	kind, ap, proxied, reason := listener.ClassifyConn(l, pipeConn{server})
	_ = client.Close()
	<-done
	return kind, ap, proxied, reason
}

func newFuzzListener(tb testing.TB) *listener.Listener {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	l := listener.New(inner, &listener.Options{TrustedProxies: trustedLoopback, Kinds: sniff.Kinds(), SniffTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// TestProxyHeaderTruncated checks that no strict prefix of a PROXY header is
// ever classified as a connection kind.
func TestProxyHeaderTruncated(t *testing.T) {
	l := newFuzzListener(t)
	for _, version := range []byte{1, 2} {
		hdr := proxyHeader(t, version, "192.0.2.10:1234")
		for i := 1; i < len(hdr); i++ {
			if kind, _, _, reason := classifyBytes(t, l, hdr[:i]); reason == "" {
				t.Fatalf("v%d header cut at %d classified as %v", version, i, kind)
			}
		}
		kind, ap, proxied, reason := classifyBytes(t, l, append(hdr, "DGS1"...))
		if reason != "" || kind != sniff.KindStream || !proxied || ap.String() != "192.0.2.10:1234" {
			t.Fatalf("full v%d header: %v %v %v %q", version, kind, ap, proxied, reason)
		}
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add(proxyHeader(f, 1, "192.0.2.10:1234"), []byte("GET / HTTP/1.1\r\n"))
	f.Add(proxyHeader(f, 2, "[2001:db8::1]:1"), []byte("DGS1"))
	f.Add([]byte("PROXY UNKNOWN\r\n"), []byte("\x16\x03\x01"))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n"), []byte("GET "))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), []byte("\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"), []byte{})
	l := newFuzzListener(f)
	f.Fuzz(func(t *testing.T, header, rest []byte) {
		in := append(header[:len(header):len(header)], rest...)
		kind, ap, proxied, reason := classifyBytes(t, l, in)
		if reason == "" {
			if kind == sniff.KindUnknown || !ap.IsValid() {
				t.Fatalf("accepted %q as %v from %v", in, kind, ap)
			}
			// A connection is only proxied when a header was there.
			if proxied && !strings.HasPrefix(string(in), "PROXY ") && !strings.HasPrefix(string(in), "\r\n\r\n\x00\r\nQUIT\n") {
				t.Fatalf("proxied without header: %q", in)
			}
		}
	})
}
