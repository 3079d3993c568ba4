package proxydial_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/proxydial"
	"github.com/dualgate/dualgate/internal/proxydial/proxytest"
)

// testTimeout is generous: the machine is shared and loaded.
const testTimeout = 30 * time.Second

func newDialer(t *testing.T, proxy *url.URL, opts *proxydial.Options) *proxydial.Dialer {
	t.Helper()
	d, err := proxydial.New(proxy, opts)
	if err != nil {
		t.Fatalf("New(%v): %v", proxy.Redacted(), err)
	}
	return d
}

func dial(t *testing.T, d *proxydial.Dialer, network, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		t.Fatalf("DialContext(%s, %s): %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkEcho writes a message, half-closes, and expects the same bytes back
// followed by EOF: it proves the tunnel carries data both ways and that
// CloseWrite survives the proxy dialers.
func checkEcho(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	msg := bytes.Repeat([]byte("dualgate proxy tunnel "), 3000) // > 64 KiB
	go func() {                                                 // ends when the write completes or the conn is closed by Cleanup
		c.Write(msg)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo returned %d bytes, want %d identical", len(got), len(msg))
	}
}

func TestDialDirect(t *testing.T) {
	echo := proxytest.StartEcho(t)
	var zero proxydial.Dialer // the zero value dials directly
	checkEcho(t, dial(t, &zero, "tcp", echo.Addr))
	checkEcho(t, dial(t, newDialer(t, nil, nil), "tcp4", echo.Addr))
	if echo.Accepted() != 2 {
		t.Fatalf("echo accepted %d, want 2", echo.Accepted())
	}
}

func TestDialDante(t *testing.T) {
	echo := proxytest.StartEcho(t)
	_, port, _ := net.SplitHostPort(echo.Addr)
	tests := []struct {
		name   string
		opts   proxytest.DanteOptions
		target string
		net    string
	}{
		{"socks5 no auth", proxytest.DanteOptions{}, echo.Addr, "tcp"},
		{"socks5h no auth", proxytest.DanteOptions{Hostnames: true}, echo.Addr, "tcp"},
		// socks5:// resolves locally; tcp4 keeps ::1 out, as the echo
		// server and Dante's external side are IPv4.
		{"socks5 local DNS", proxytest.DanteOptions{}, net.JoinHostPort("localhost", port), "tcp4"},
		{"socks5 user/pass", proxytest.DanteOptions{Auth: true}, echo.Addr, "tcp"},
		{"socks5h user/pass", proxytest.DanteOptions{Auth: true, Hostnames: true}, echo.Addr, "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := proxytest.StartDante(t, &tt.opts)
			before := echo.Accepted()
			checkEcho(t, dial(t, newDialer(t, d.URL, nil), tt.net, tt.target))
			d.WaitRelayed(t, 1)
			if got := d.Relayed(); got != 1 {
				t.Fatalf("Dante relayed %d connections, want 1", got)
			}
			if got := echo.Accepted() - before; got != 1 {
				t.Fatalf("echo accepted %d connections, want 1", got)
			}
		})
	}
}

func TestDialDanteRefusesBadCredentials(t *testing.T) {
	echo := proxytest.StartEcho(t)
	d := proxytest.StartDante(t, &proxytest.DanteOptions{Auth: true})

	wrong := *d.URL
	wrong.User = url.UserPassword(proxytest.TestUser, "not-the-password")
	_, err := newDialer(t, &wrong, nil).DialContext(context.Background(), "tcp", echo.Addr)
	if !errors.Is(err, proxydial.ErrProxyAuth) {
		t.Fatalf("wrong password: err = %v, want ErrProxyAuth", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "proxydial: ") || strings.Contains(msg, "not-the-password") {
		t.Fatalf("error %q must start with proxydial: and must not leak the password", msg)
	}
	d.WaitAuthFailures(t, 1)

	anon := *d.URL
	anon.User = nil
	_, err = newDialer(t, &anon, nil).DialContext(context.Background(), "tcp", echo.Addr)
	if !errors.Is(err, proxydial.ErrProxyAuth) {
		t.Fatalf("no credentials: err = %v, want ErrProxyAuth", err)
	}
	if d.Relayed() != 0 || echo.Accepted() != 0 {
		t.Fatalf("refused dials reached the target: relayed %d, accepted %d", d.Relayed(), echo.Accepted())
	}
}

func TestDialDanteUnreachableTarget(t *testing.T) {
	d := proxytest.StartDante(t, nil)
	// A port nobody listens on: Dante answers with a SOCKS failure reply.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = newDialer(t, d.URL, nil).DialContext(context.Background(), "tcp", addr)
	if err == nil || !strings.HasPrefix(err.Error(), "proxydial: socks5 proxy") || errors.Is(err, proxydial.ErrProxyAuth) {
		t.Fatalf("err = %v, want a proxydial socks5 error that is not ErrProxyAuth", err)
	}
}

func TestDialConnect(t *testing.T) {
	echo := proxytest.StartEcho(t)
	t.Run("no auth", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, nil)
		checkEcho(t, dial(t, newDialer(t, p.URL, nil), "tcp", echo.Addr))
		if p.Tunnels() != 1 {
			t.Fatalf("Tunnels = %d, want 1", p.Tunnels())
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Username: "alice", Password: "s3cr:et é"})
		checkEcho(t, dial(t, newDialer(t, p.URL, nil), "tcp", echo.Addr))
		if p.Tunnels() != 1 {
			t.Fatalf("Tunnels = %d, want 1", p.Tunnels())
		}
	})
	t.Run("early tunnel bytes are kept", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Early: []byte("EARLY")})
		c := dial(t, newDialer(t, p.URL, nil), "tcp", echo.Addr)
		c.SetDeadline(time.Now().Add(testTimeout))
		var early [5]byte
		if _, err := io.ReadFull(c, early[:]); err != nil || string(early[:]) != "EARLY" {
			t.Fatalf("first bytes = %q, %v; want EARLY", early, err)
		}
		checkEcho(t, c)
	})
}

func TestDialConnectFailures(t *testing.T) {
	echo := proxytest.StartEcho(t)
	tests := []struct {
		name     string
		opts     proxytest.ConnectProxyOptions
		user     *url.Userinfo
		wantAuth bool
		wantMsg  string
	}{
		{"wrong password", proxytest.ConnectProxyOptions{Username: "alice", Password: "right"}, url.UserPassword("alice", "wrong"), true, "407"},
		{"no credentials", proxytest.ConnectProxyOptions{Username: "alice", Password: "right"}, nil, true, "407"},
		{"forbidden", proxytest.ConnectProxyOptions{Response: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"}, nil, false, "403 Forbidden"},
		{"bad gateway", proxytest.ConnectProxyOptions{Hosts: map[string]string{echo.Addr: "127.0.0.1:1"}}, nil, false, "502"},
		{"garbage", proxytest.ConnectProxyOptions{Response: "SSH-2.0-OpenSSH_9.2\r\n\r\n"}, nil, false, "bad status line"},
		{"binary garbage", proxytest.ConnectProxyOptions{Response: "\x16\x03\x01\x00\x05hello"}, nil, false, "malformed response"},
		{"closed mid-header", proxytest.ConnectProxyOptions{Response: "HTTP/1.1 200 OK\r\nVia: x"}, nil, false, "unexpected EOF"},
		{"header too large", proxytest.ConnectProxyOptions{Response: "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"}, nil, false, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxytest.StartConnectProxy(t, &tt.opts)
			u := *p.URL
			u.User = tt.user
			_, err := newDialer(t, &u, nil).DialContext(context.Background(), "tcp", echo.Addr)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			if errors.Is(err, proxydial.ErrProxyAuth) != tt.wantAuth {
				t.Fatalf("err = %v; ErrProxyAuth match = %v, want %v", err, !tt.wantAuth, tt.wantAuth)
			}
			if !strings.HasPrefix(err.Error(), "proxydial: ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %q, want the proxydial: prefix and %q", err, tt.wantMsg)
			}
			if p.Requests() != 1 || p.Tunnels() != 0 {
				t.Fatalf("Requests = %d, Tunnels = %d; want 1, 0", p.Requests(), p.Tunnels())
			}
		})
	}
	if echo.Accepted() != 0 {
		t.Fatalf("failed dials reached the target %d times", echo.Accepted())
	}
}

func TestDialConnectStalledProxy(t *testing.T) {
	echo := proxytest.StartEcho(t)
	stalled := &proxytest.ConnectProxyOptions{Stall: true}

	t.Run("context deadline", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, stalled)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := newDialer(t, p.URL, nil).DialContext(ctx, "tcp", echo.Addr)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "proxydial: ") {
			t.Fatalf("err = %v, want a proxydial error matching context.DeadlineExceeded", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, stalled)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := newDialer(t, p.URL, nil).DialContext(ctx, "tcp", echo.Addr)
			errc <- err
		}()
		// Cancel once the proxy holds the request, so the wait is the
		// response read, not the connect.
		p.WaitRequests(t, 1)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("DialContext did not return after cancel")
		}
	})
	t.Run("handshake timeout option", func(t *testing.T) {
		p := proxytest.StartConnectProxy(t, stalled)
		d := newDialer(t, p.URL, &proxydial.Options{HandshakeTimeout: 300 * time.Millisecond})
		_, err := d.DialContext(context.Background(), "tcp", echo.Addr)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	if echo.Accepted() != 0 {
		t.Fatalf("a stalled proxy reached the target %d times", echo.Accepted())
	}
}

func TestDialThroughProxyFromEnvironment(t *testing.T) {
	echo := proxytest.StartEcho(t)
	// Loopback targets are never proxied from the environment (as in
	// net/http), so the test uses names that only the proxy resolves.
	p := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Hosts: map[string]string{
		"echo.example:443":  echo.Addr,
		"echo.example:7000": echo.Addr,
	}})
	t.Setenv("HTTPS_PROXY", p.URL.String())
	t.Setenv("https_proxy", "")
	t.Setenv("ALL_PROXY", p.URL.String())
	t.Setenv("all_proxy", "")
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "")
	t.Setenv("NO_PROXY", "direct.example")
	t.Setenv("no_proxy", "")

	for i, target := range []string{"wss://echo.example/session", "tls://echo.example:7000", "tcp://echo.example:7000"} {
		u, _ := url.Parse(target)
		proxyURL, err := proxydial.FromEnvironment(u)
		if err != nil || proxyURL == nil || proxyURL.Host != p.Addr {
			t.Fatalf("FromEnvironment(%s) = %v, %v; want the proxy", target, proxyURL, err)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		checkEcho(t, dial(t, newDialer(t, proxyURL, nil), "tcp", net.JoinHostPort(u.Hostname(), port)))
		if p.Tunnels() != i+1 {
			t.Fatalf("Tunnels = %d after %s, want %d", p.Tunnels(), target, i+1)
		}
	}
	u, _ := url.Parse("wss://direct.example/")
	if proxyURL, err := proxydial.FromEnvironment(u); err != nil || proxyURL != nil {
		t.Fatalf("NO_PROXY target: FromEnvironment = %v, %v; want nil, nil", proxyURL, err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"https proxy", "https://proxy.example:3128", "unsupported proxy scheme"},
		{"socks4", "socks4://proxy.example", "unsupported proxy scheme"},
		{"no host", "socks5://:1080", "no host"},
		{"path", "http://proxy.example:3128/x", "path"},
		{"colon in http user", "http://a%3Ab:c@proxy.example", "must not contain ':'"},
		{"long socks password", "socks5://u:" + strings.Repeat("p", 256) + "@proxy.example", "password at most 255"},
		{"empty socks user", "socks5://:p@proxy.example", "username must be 1-255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = proxydial.New(u, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "proxydial: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%s) err = %v, want %q", tt.name, err, tt.want)
			}
			if strings.Contains(err.Error(), "ppppp") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestDialContextRejects(t *testing.T) {
	p := proxytest.StartConnectProxy(t, nil)
	d := newDialer(t, p.URL, nil)
	tests := []struct{ name, network, addr, want string }{
		{"udp", "udp", "127.0.0.1:53", "unsupported network"},
		{"no port", "tcp", "127.0.0.1", "bad target address"},
		{"header injection", "tcp", "a\r\nX-Evil 1\r\nb:80", "control or space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DialContext(context.Background(), tt.network, tt.addr)
			if err == nil || !strings.HasPrefix(err.Error(), "proxydial: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if p.Requests() != 0 {
		t.Fatalf("rejected dials reached the proxy: %d", p.Requests())
	}
}

// TestDialSOCKSStalledProxy checks the SOCKS path honours the context too: a
// listener that accepts and never answers stands in for a hung proxy.
func TestDialSOCKSStalledProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() { // ends when ln is closed below
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	d := newDialer(t, &url.URL{Scheme: "socks5h", Host: ln.Addr().String(), User: url.UserPassword("u", "p")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = d.DialContext(ctx, "tcp", "target.example:443")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "proxydial: ") {
		t.Fatalf("err = %v, want a proxydial error matching context.DeadlineExceeded", err)
	}
}
