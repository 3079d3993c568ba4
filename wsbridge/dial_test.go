package wsbridge

import (
	"net"
	"syscall"
	"testing"
)

// TestUpstreamDialerKeepAlive checks on real sockets that a loopback tcp
// upstream is dialled without TCP keep-alive and any other upstream with
// Go's default keep-alive.
func TestUpstreamDialerKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tests := []struct {
		name, spec string
		loopback   bool
	}{
		{"ipv4 loopback", "tcp://127.0.0.1:" + port, true},
		{"other ipv4 loopback", "tcp://127.0.0.2:9", true},
		{"ipv6 loopback", "tcp://[::1]:9", true},
		{"name", "tcp://localhost:" + port, false},
		{"remote", "tcp://192.0.2.1:9", false},
		{"unix", "unix:///run/app.sock", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := ParseUpstream(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if up.loopback != tt.loopback {
				t.Fatalf("loopback = %v, want %v", up.loopback, tt.loopback)
			}
			if up.Addr != "127.0.0.1:"+port && up.Addr != "localhost:"+port {
				return // nothing listens there
			}
			c, err := up.dialer().Dial("tcp", up.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var ka int
			var serr error
			if err := rc.Control(func(fd uintptr) {
				ka, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			}); err != nil {
				t.Fatal(err)
			}
			if serr != nil {
				t.Fatal(serr)
			}
			if got := ka != 0; got == tt.loopback {
				t.Fatalf("SO_KEEPALIVE = %d for loopback = %v", ka, tt.loopback)
			}
		})
	}
}
