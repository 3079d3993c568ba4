package resume

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// TestTLSCarriers dials wss:// and tls:// gateways with real TLS.
func TestTLSCarriers(t *testing.T) {
	k, _ := GenerateKey()
	srv, err := NewServer(fastOpts(k))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var wg sync.WaitGroup
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		srv.ServeTransport(r.Context(), WebSocketTransport(c), TransportInfo{Route: r.URL.Path, RemoteAddr: ap, Secure: true})
	}))
	defer hs.Close()
	cert := hs.TLS.Certificates[0]
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	serveAccepted(&wg, ln, func(c net.Conn) {
		srv.ServeConn(context.Background(), c, TransportInfo{Route: "/tls", Secure: true}) //nolint:errcheck
	})
	defer func() { srv.Close(); ln.Close(); hs.CloseClientConnections(); wg.Wait() }()
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	for _, url := range []string{"wss" + strings.TrimPrefix(hs.URL, "https") + "/secure", "tls://" + ln.Addr().String()} {
		o := fastDial(k.PublicString())
		o.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "example.com"}
		c, err := Dial(ctxT(t), url, o)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		sc, err := srv.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if !sc.Info().Secure {
			t.Fatal("not marked secure")
		}
		c.Write([]byte("tls!"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "tls!" {
			t.Fatalf("%q %v", buf, err)
		}
		c.Close()
		sc.Close()
	}
	// A plain client against the TLS port fails cleanly.
	if _, err := Dial(ctxT(t), "tcp://"+ln.Addr().String(), fastDial("")); err == nil {
		t.Fatal("plain dial to a TLS port succeeded")
	}
}
