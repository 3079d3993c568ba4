package listener_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

// BenchmarkConnSetup measures connections per second of a full plain HTTP
// exchange (dial, one request with Connection: close, read the response to
// EOF) against a net/http server on a bare listener and on the sniffing
// listener's HTTP kind, on the same machine.
func BenchmarkConnSetup(b *testing.B) {
	for _, mode := range []string{"bare", "sniffing"} {
		for _, parallel := range []bool{false, true} {
			name := mode + "/serial"
			if parallel {
				name = mode + "/parallel"
			}
			b.Run(name, func(b *testing.B) { benchConnSetup(b, mode == "sniffing", parallel) })
		}
	}
}

func benchConnSetup(b *testing.B, sniffing, parallel bool) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := inner.Addr().String()
	var ln net.Listener = inner
	if sniffing {
		l := listener.New(inner, &listener.Options{MaxConnsPerIP: -1, MaxConns: -1})
		defer l.Close()
		ln = l.For(sniff.KindHTTP)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	defer func() { _ = srv.Close(); <-done }()

	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	one := func(buf []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := c.Read(buf[n:])
			n += m
			if err != nil {
				break
			}
		}
		_ = c.Close()
		if n < 12 || string(buf[9:12]) != "200" {
			b.Fatalf("response %q", buf[:n])
		}
	}
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 1024)
			for pb.Next() {
				one(buf)
			}
		})
	} else {
		buf := make([]byte, 1024)
		for b.Loop() {
			one(buf)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
}
