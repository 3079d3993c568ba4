package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/dualgate/dualgate/web"
)

// The gateway mounts the handler at "/" next to its routes; the page then
// loads the client with `import { connect } from "/dualgate.js"`.
func ExampleNewHandler() {
	mux := http.NewServeMux()
	mux.Handle("/", web.NewHandler(&web.Options{Route: "/stream"}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/dualgate.js")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Header.Get("Content-Type"))
	fmt.Println(strings.Contains(string(body), "dualgate.v1"))
	// Output:
	// text/javascript; charset=utf-8
	// true
}
