package proxydial_test

import (
	"context"
	"testing"

	"github.com/dualgate/dualgate/internal/proxydial"
	"github.com/dualgate/dualgate/internal/proxydial/proxytest"
)

// BenchmarkDialConnect measures tunnels per second through the loopback
// CONNECT proxy with Basic credentials: TCP connect, request and reply.
func BenchmarkDialConnect(b *testing.B) {
	echo := proxytest.StartEcho(b)
	p := proxytest.StartConnectProxy(b, &proxytest.ConnectProxyOptions{Username: "u", Password: "p"})
	d, err := proxydial.New(p.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.DialContext(context.Background(), "tcp", echo.Addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkDialDante measures tunnels per second through a real danted
// with username/password authentication.
func BenchmarkDialDante(b *testing.B) {
	echo := proxytest.StartEcho(b)
	dante := proxytest.StartDante(b, &proxytest.DanteOptions{Auth: true})
	d, err := proxydial.New(dante.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.DialContext(context.Background(), "tcp", echo.Addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
