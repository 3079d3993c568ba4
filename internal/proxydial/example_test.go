package proxydial_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/dualgate/dualgate/internal/proxydial"
)

// A client picks the proxy for its target URL from the environment once per
// dial and connects to the target's host and port through it.
func Example_fromEnvironment() {
	target, _ := url.Parse("wss://gateway.example/session")
	proxyURL, err := proxydial.FromEnvironment(target) // nil: no proxy
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := proxydial.New(proxyURL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", "gateway.example:443")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	// Layer TLS and the WebSocket handshake on conn.
}

func ExampleNew() {
	for _, raw := range []string{
		"socks5h://alice:secret@proxy.example:1080",
		"http://proxy.example:3128",
		"https://proxy.example:3128",
	} {
		u, _ := url.Parse(raw)
		_, err := proxydial.New(u, nil)
		fmt.Printf("%s: %v\n", u.Redacted(), err)
	}
	// Output:
	// socks5h://alice:xxxxx@proxy.example:1080: <nil>
	// http://proxy.example:3128: <nil>
	// https://proxy.example:3128: proxydial: unsupported proxy scheme "https" in "https://proxy.example:3128" (want socks5://, socks5h:// or http://)
}

// A Dialer without a proxy (or the zero Dialer) connects directly.
func ExampleDialer_DialContext() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hello from the target")
		c.Close()
	}()

	var d proxydial.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	b, _ := io.ReadAll(conn)
	fmt.Println(string(b))
	// Output: hello from the target
}
