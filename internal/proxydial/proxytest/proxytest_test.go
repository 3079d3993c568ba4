package proxytest_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/proxydial/proxytest"
)

const ioTimeout = 30 * time.Second

// socksConnect speaks just enough SOCKS5 by hand to check the helper without
// the client under test in package proxydial.
func socksConnect(t *testing.T, proxyAddr, user, pass, target string) (net.Conn, byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	method := byte(0)
	if user != "" {
		method = 2
	}
	c.Write([]byte{5, 1, method})
	var b [10]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		t.Fatal(err)
	}
	if b[1] != method {
		t.Fatalf("server chose method %d, want %d", b[1], method)
	}
	if user != "" {
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		c.Write(msg)
		if _, err := io.ReadFull(c, b[:2]); err != nil {
			t.Fatal(err)
		}
		if b[1] != 0 {
			return c, 0xff
		}
	}
	ap := netip.MustParseAddrPort(target)
	req := append([]byte{5, 1, 0, 1}, ap.Addr().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, ap.Port())
	c.Write(req)
	if _, err := io.ReadFull(c, b[:10]); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return c, b[1]
}

func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	var got [4]byte
	if _, err := io.ReadFull(c, got[:]); err != nil || string(got[:]) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

func TestDanteRelaysAndStops(t *testing.T) {
	echo := proxytest.StartEcho(t)
	var addr string
	t.Run("running", func(t *testing.T) {
		d := proxytest.StartDante(t, nil)
		addr = d.Addr
		if d.URL.Scheme != "socks5" || d.URL.User != nil {
			t.Fatalf("URL = %v", d.URL)
		}
		c, rep := socksConnect(t, d.Addr, "", "", echo.Addr)
		if rep != 0 {
			t.Fatalf("SOCKS reply %d", rep)
		}
		echoOnce(t, c)
		d.WaitRelayed(t, 1)
		if got := d.Relayed(); got != 1 {
			t.Fatalf("Relayed = %d, want 1", got)
		}
	})
	// The subtest's cleanup has stopped danted and all its children.
	if c, err := net.DialTimeout("tcp", addr, ioTimeout); err == nil {
		c.Close()
		t.Fatalf("danted still accepts on %s after cleanup", addr)
	}
}

func TestDanteAuth(t *testing.T) {
	echo := proxytest.StartEcho(t)
	d := proxytest.StartDante(t, &proxytest.DanteOptions{Auth: true, Hostnames: true})
	if d.URL.Scheme != "socks5h" || d.URL.User.Username() != proxytest.TestUser {
		t.Fatalf("URL = %v", d.URL.Redacted())
	}
	pass, _ := d.URL.User.Password()
	c, rep := socksConnect(t, d.Addr, proxytest.TestUser, pass, echo.Addr)
	if rep != 0 {
		t.Fatalf("SOCKS reply %d with the right password", rep)
	}
	echoOnce(t, c)
	d.WaitRelayed(t, 1)

	if _, rep := socksConnect(t, d.Addr, proxytest.TestUser, pass+"x", echo.Addr); rep != 0xff {
		t.Fatalf("wrong password accepted")
	}
	d.WaitAuthFailures(t, 1)
	if !strings.Contains(d.Log(), "authentication failed") {
		t.Fatalf("log does not mention the failure:\n%s", d.Log())
	}
	if st, err := os.Stat(os.TempDir() + "/dualgate-proxytest.password"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password state file: %v %v", st, err)
	}
}

func TestConnectProxy(t *testing.T) {
	echo := proxytest.StartEcho(t)
	p := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Username: "u", Password: "p"})
	dial := func(authz string) (net.Conn, *http.Response) {
		c, err := net.DialTimeout("tcp", p.Addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(ioTimeout))
		req := "CONNECT " + echo.Addr + " HTTP/1.1\r\nHost: " + echo.Addr + "\r\n"
		if authz != "" {
			req += "Proxy-Authorization: " + authz + "\r\n"
		}
		io.WriteString(c, req+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Time{})
		return c, resp
	}
	if _, resp := dial(""); resp.StatusCode != 407 {
		t.Fatalf("no credentials: status %d", resp.StatusCode)
	}
	if _, resp := dial("Basic dTp4"); resp.StatusCode != 407 { // u:x
		t.Fatalf("wrong credentials: status %d", resp.StatusCode)
	}
	if p.Tunnels() != 0 || echo.Accepted() != 0 {
		t.Fatalf("refused requests reached the target: tunnels %d, accepted %d", p.Tunnels(), echo.Accepted())
	}
	c, resp := dial("basic dTpw") // u:p; the scheme is case-insensitive
	if resp.StatusCode != 200 {
		t.Fatalf("right credentials: status %d", resp.StatusCode)
	}
	echoOnce(t, c)
	if p.Tunnels() != 1 || p.Requests() != 3 {
		t.Fatalf("Tunnels = %d, Requests = %d; want 1, 3", p.Tunnels(), p.Requests())
	}
}
