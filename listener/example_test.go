package listener_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

// Example serves plain HTTP and the resume byte stream on one port.
func Example() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	l := listener.New(inner, &listener.Options{Kinds: []sniff.Kind{sniff.KindHTTP, sniff.KindStream}})
	defer l.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over http")
	})}
	go srv.Serve(l.For(sniff.KindHTTP))
	defer srv.Close()

	// A byte-stream client on the same port.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	io.WriteString(c, "DGS1")
	sc, err := l.For(sniff.KindStream).Accept()
	if err != nil {
		panic(err)
	}
	defer sc.Close()
	pre := make([]byte, 4)
	io.ReadFull(sc, pre) // the peeked preamble is replayed
	fmt.Printf("stream conn, preamble %q, kind %v\n", pre, sc.(*listener.Conn).Kind())

	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	io.Copy(&b, resp.Body)
	fmt.Println(b.String())
	// Output:
	// stream conn, preamble "DGS1", kind stream
	// hello over http
}
