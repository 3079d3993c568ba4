package legacy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dualgate/dualgate/legacy"
)

// Example serves the legacy protocol on a loopback listener, echoes one
// session and talks to it with the Go client.
func Example() {
	srv, err := legacy.NewServer(&legacy.ServerOptions{Encrypt: true})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			info := legacy.Info{RemoteAddr: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
			go srv.ServeConn(context.Background(), c, info)
		}
	}()
	go func() {
		for {
			sess, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(sess, sess)
				sess.Close()
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := legacy.Dial(ctx, "tcp", ln.Addr().String(), &legacy.DialOptions{Encrypt: true})
	if err != nil {
		panic(err)
	}
	c.Write([]byte("hello, snet"))
	buf := make([]byte, 11)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))

	c.Close()
	ln.Close()
	srv.Close()
	// Output: hello, snet
}
