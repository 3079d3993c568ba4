package wsbridge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/wsbridge"
	"github.com/prometheus/client_golang/prometheus"
)

// gateway is the real data path of cmd/gateway minus the sniffing listener:
// a resume server, the wsbridge Handler on a plain and a TLS httptest
// server, and a Bridger serving the resume server's sessions.
type gateway struct {
	srv    *resume.Server
	b      *wsbridge.Bridger
	h      *wsbridge.Handler
	ws     *httptest.Server
	wss    *httptest.Server
	reg    *prometheus.Registry
	served chan error
}

func startGateway(t testing.TB, routes []string, ropts *resume.ServerOptions, bopts *wsbridge.Options) *gateway {
	t.Helper()
	rt, err := wsbridge.ParseRoutes(routes...)
	if err != nil {
		t.Fatal(err)
	}
	key, err := resume.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var ro resume.ServerOptions
	if ropts != nil {
		ro = *ropts
	}
	ro.Key = key
	srv, err := resume.NewServer(&ro)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, reg: prometheus.NewRegistry(), served: make(chan error, 1)}
	var bo wsbridge.Options
	if bopts != nil {
		bo = *bopts
	}
	bo.Registerer = g.reg
	if g.b, err = wsbridge.New(rt, &bo); err != nil {
		t.Fatal(err)
	}
	if g.h, err = wsbridge.NewHandler(srv, rt, &wsbridge.HandlerOptions{Registerer: g.reg}); err != nil {
		t.Fatal(err)
	}
	g.ws = httptest.NewServer(g.h)
	g.wss = httptest.NewTLSServer(g.h)
	go func() { g.served <- wsbridge.Serve(context.Background(), g.b, srv) }()
	t.Cleanup(func() {
		// Order: end sessions and transports, then the accept loop and
		// bridges, then the HTTP servers (which wait for their handlers).
		srv.Close()
		select {
		case err := <-g.served:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("Serve did not return")
		}
		if err := g.b.Close(); err != nil {
			t.Error(err)
		}
		if err := g.h.Close(); err != nil {
			t.Error(err)
		}
		g.ws.Close()
		g.wss.Close()
	})
	return g
}

// url returns the ws:// or wss:// URL of path.
func (g *gateway) url(secure bool, path string) string {
	if secure {
		return "wss" + strings.TrimPrefix(g.wss.URL, "https") + path
	}
	return "ws" + strings.TrimPrefix(g.ws.URL, "http") + path
}

// dialOpts returns client options that trust the TLS test server.
func (g *gateway) dialOpts() *resume.DialOptions {
	pool := x509.NewCertPool()
	pool.AddCert(g.wss.Certificate())
	return &resume.DialOptions{Proxy: "direct", TLSConfig: &tls.Config{RootCAs: pool}}
}
