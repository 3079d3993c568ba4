package resume_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/dualgate/dualgate/resume"
)

// Example shows a gateway serving byte-stream transports on a TCP listener
// and a client that dials it with the gateway's key pinned.
func Example() {
	key, err := resume.GenerateKey() // a gateway uses LoadOrCreateKey
	if err != nil {
		log.Fatal(err)
	}
	srv, err := resume.NewServer(&resume.ServerOptions{Key: key})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept loop: each connection carries one transport
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
				srv.ServeConn(context.Background(), c, resume.TransportInfo{Route: "/echo", RemoteAddr: ap})
			}()
		}
	}()
	go func() { // application: echo every session
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() { // keep message boundaries and types
				defer c.Close()
				for {
					typ, msg, err := c.ReadMessage(context.Background())
					if err != nil {
						return // io.EOF after the client's Close
					}
					if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
						return
					}
				}
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := resume.Dial(ctx, "tcp://"+ln.Addr().String(), &resume.DialOptions{ServerKey: key.PublicString()})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.WriteMessage(ctx, resume.MessageText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	typ, msg, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ == resume.MessageText, string(msg))
	c.Close()

	shutdownCtx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	srv.Shutdown(shutdownCtx)
	// Output: true hello
}

// ExampleServer_StartTransport shows the gateway's WebSocket handler: it
// upgrades with the dualgate.v1 subprotocol, runs the handshake and returns,
// while the transport is served in the background and an Accept loop bridges
// each new session by its route.
func ExampleServer_StartTransport() {
	key, _ := resume.GenerateKey()
	srv, _ := resume.NewServer(&resume.ServerOptions{Key: key})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Check r's Origin header first (see wsbridge.HandlerOptions).
		t, err := resume.UpgradeWebSocket(w, r) // answers bad requests; 4012 without dualgate.v1
		if err != nil {
			return
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		// The session outlives the transport; done reports why the transport ended.
		srv.StartTransport(context.Background(), t,
			resume.TransportInfo{Route: r.URL.Path, RemoteAddr: ap, Secure: r.TLS != nil},
			func(err error) {})
	})
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return // net.ErrClosed after Shutdown or Close
			}
			fmt.Println("new session on", c.Info().Route) // bridge c to the route's upstream
		}
	}()
	_ = http.ListenAndServe // serve handler on the gateway's HTTP server
	_ = handler
}
