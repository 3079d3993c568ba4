package wsbridge_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/wsbridge"
)

func ExampleParseRoute() {
	r, err := wsbridge.ParseRoute("/stream=tcp://127.0.0.1:9000?proxy=v2")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Path, r.Upstream.Kind, r.Upstream.Addr, r.Upstream.Proxy == wsbridge.ProxyV2)

	_, err = wsbridge.ParseRoute("/stream=tcp://127.0.0.1")
	fmt.Println(err)
	// Output:
	// /stream tcp 127.0.0.1:9000 true
	// wsbridge: route "/stream=tcp://127.0.0.1": upstream "tcp://127.0.0.1": want tcp://host:port
}

// Example wires the gateway's WebSocket data path: the handler hands each
// transport to the resume server, and the bridger connects each new session
// to its route's upstream (here the built-in echo).
func Example() {
	key, _ := resume.GenerateKey()
	srv, _ := resume.NewServer(&resume.ServerOptions{Key: key})
	routes := wsbridge.DefaultRoutes() // /stream=builtin:echo
	bridger, _ := wsbridge.New(routes, nil)
	handler, _ := wsbridge.NewHandler(srv, routes, nil)
	web := httptest.NewServer(handler)
	served := make(chan error, 1)
	go func() { served <- wsbridge.Serve(context.Background(), bridger, srv) }()

	ctx := context.Background()
	c, err := resume.Dial(ctx, "ws"+strings.TrimPrefix(web.URL, "http")+"/stream", &resume.DialOptions{Proxy: "direct"})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.WriteMessage(ctx, resume.MessageText, []byte("hello through the gateway"))
	typ, msg, _ := c.ReadMessage(ctx)
	fmt.Println(typ == resume.MessageText, string(msg))
	c.Close()

	// Shutdown order: the bridges (clients are told 1001 and upstreams are
	// closed cleanly), the resume server (which ends Serve), the handler,
	// the HTTP server.
	bridger.Drain(ctx)
	srv.Shutdown(ctx)
	<-served
	handler.Shutdown(ctx)
	web.Close()
	// Output: true hello through the gateway
}
