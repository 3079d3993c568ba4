package tlsmux_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/listener/listenertest"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

// Example serves http:// and https:// on one port with one http.Server,
// whose handler sees r.TLS for the requests that came over TLS.
func Example() {
	cache := sniff.NewIPCache(0, 0)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	l := listener.New(inner, &listener.Options{IPCache: cache})
	defer l.Close()
	cert, pool := listenertest.Certificate(nil)
	mux := tlsmux.New(l.For(sniff.KindTLS), &tls.Config{Certificates: []tls.Certificate{cert}}, &tlsmux.Options{IPCache: cache})
	defer mux.Close()

	srv := &http.Server{
		Handler: tlsmux.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "secure=%v", r.TLS != nil)
		})),
		ConnContext: tlsmux.ConnContext,
	}
	go srv.Serve(l.For(sniff.KindHTTP))
	go srv.Serve(mux.For(sniff.KindHTTP))
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	for _, scheme := range []string{"http", "https"} {
		resp, err := client.Get(scheme + "://" + l.Addr().String() + "/")
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s\n", scheme, b)
	}
	// Output:
	// http: secure=false
	// https: secure=true
}
