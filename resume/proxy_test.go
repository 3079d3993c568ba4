package resume

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/dualgate/dualgate/internal/proxydial/proxytest"
)

// TestDialThroughProxies runs sessions through a real Dante SOCKS5 server
// (with username/password) and an HTTP CONNECT proxy, over both carriers.
func TestDialThroughProxies(t *testing.T) {
	ts := newTestServer(t, nil)
	dante := proxytest.StartDante(t, &proxytest.DanteOptions{Auth: true})
	connect := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Username: "u", Password: "p w"})
	for _, tc := range []struct {
		name, proxy, url string
	}{
		{"socks5/tcp", dante.URL.String(), ts.tcpURL()},
		{"socks5/ws", dante.URL.String(), ts.wsURL()},
		{"connect/tcp", connect.URL.String(), ts.tcpURL()},
		{"connect/ws", connect.URL.String(), ts.wsURL()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fastDial(ts.key.PublicString())
			o.Proxy = tc.proxy
			c, sc := dialPair(t, ts, tc.url, o)
			if _, err := c.Write([]byte("via proxy")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 9)
			if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "via proxy" {
				t.Fatalf("%q %v", buf, err)
			}
		})
	}
	if dante.Relayed() < 2 || connect.Tunnels() < 2 {
		t.Fatalf("proxies relayed %d / %d connections", dante.Relayed(), connect.Tunnels())
	}
	// Wrong credentials fail the dial.
	bad := *dante.URL
	bad.User = nil
	o := fastDial("")
	o.Proxy = bad.String()
	if _, err := Dial(ctxT(t), ts.tcpURL(), o); err == nil {
		t.Fatal("dial through SOCKS5 without credentials succeeded")
	}
	// A proxy from the environment: ALL_PROXY for tcp:// (loopback targets
	// are never proxied from the environment, so use a name the proxy maps).
	_, port, _ := net.SplitHostPort(ts.tcp.Addr().String())
	mapped := proxytest.StartConnectProxy(t, &proxytest.ConnectProxyOptions{Hosts: map[string]string{"gateway.test:" + port: ts.tcp.Addr().String()}})
	t.Setenv("ALL_PROXY", mapped.URL.String())
	t.Setenv("NO_PROXY", "")
	c, sc := dialPair(t, ts, "tcp://gateway.test:"+port, fastDial(""))
	c.Write([]byte("env"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(sc, buf); err != nil || !strings.EqualFold(string(buf), "env") {
		t.Fatalf("%q %v", buf, err)
	}
	if mapped.Tunnels() < 1 {
		t.Fatal("environment proxy not used")
	}
}
