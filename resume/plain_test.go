package resume

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/resume/resumetest"
)

// tlsTestServer serves WebSocket transports over https (as the gateway
// does: UpgradeWebSocket, StartTransport) and byte-stream transports over
// a TLS listener, telling the Server the TLS version it terminated.
type tlsTestServer struct {
	srv  *Server
	reg  *prometheus.Registry
	http *httptest.Server
	tls  net.Listener
	pool *x509.CertPool
	wg   sync.WaitGroup
}

func newTLSTestServer(t *testing.T, alwaysSeal bool, maxVersion uint16) *tlsTestServer {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o := fastOpts(k)
	o.AlwaysSeal = alwaysSeal
	ts := &tlsTestServer{reg: prometheus.NewRegistry()}
	o.Registerer = ts.reg
	if ts.srv, err = NewServer(o); err != nil {
		t.Fatal(err)
	}
	ts.http = httptest.NewUnstartedServer(serveUpgrades(ts.srv, &ts.wg, nil, func(r *http.Request, info *TransportInfo) {
		info.Secure, info.TLSVersion = true, r.TLS.Version
	}, nil))
	// X25519 alone: the hybrid post-quantum exchange is slow under the race
	// detector, and every cut costs a TLS handshake.
	ts.http.TLS = &tls.Config{MaxVersion: maxVersion, CurvePreferences: []tls.CurveID{tls.X25519}}
	ts.http.StartTLS()
	ts.pool = x509.NewCertPool()
	ts.pool.AddCert(ts.http.Certificate())
	ts.tls, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: ts.http.TLS.Certificates, MaxVersion: maxVersion, CurvePreferences: []tls.CurveID{tls.X25519}})
	if err != nil {
		t.Fatal(err)
	}
	serveAccepted(&ts.wg, ts.tls, func(c net.Conn) {
		tc := c.(*tls.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), o.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.Close()
			return
		}
		ts.srv.ServeConn(context.Background(), c, TransportInfo{Route: "/tls", Secure: true, //nolint:errcheck
			TLSVersion: tc.ConnectionState().Version})
	})
	t.Cleanup(func() {
		ts.srv.Close()
		ts.tls.Close()
		ts.http.CloseClientConnections()
		ts.http.Close()
		ts.wg.Wait()
	})
	return ts
}

// TestPlainInTLS runs sessions whose transports are cut repeatedly, over
// every combination that decides the frame mode (docs/protocol.md §5.7),
// checks every echoed byte, and checks on both sides that every transport
// used the mode the rules give: plain only for an unpinned client that
// verified the certificate, inside TLS 1.3 the server terminated, with
// neither side asking to seal always.
func TestPlainInTLS(t *testing.T) {
	cases := []struct {
		name             string
		scheme           string // wss or tls
		pin, clientSeal  bool
		insecure         bool
		serverSeal       bool
		serverMaxVersion uint16
		plain            bool
	}{
		{name: "wss", scheme: "wss", plain: true},
		{name: "tls", scheme: "tls", plain: true},
		{name: "wss pinned", scheme: "wss", pin: true},
		{name: "tls pinned", scheme: "tls", pin: true},
		{name: "client always seals", scheme: "wss", clientSeal: true},
		{name: "server always seals", scheme: "wss", serverSeal: true},
		{name: "server TLS 1.2", scheme: "wss", serverMaxVersion: tls.VersionTLS12},
		{name: "certificate not verified", scheme: "wss", insecure: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTLSTestServer(t, tc.serverSeal, tc.serverMaxVersion)
			target, path := ts.tls.Addr().String(), ""
			if tc.scheme == "wss" {
				target, path = strings.TrimPrefix(ts.http.URL, "https://"), "/plain"
			}
			p := resumetest.NewProxy(t, target)
			p.SetBudget(func() int64 { return 100_000 + rand.Int64N(300_000) })
			o := fastDial("")
			if tc.pin {
				o.ServerKey = ts.srv.opts.Key.PublicString()
			}
			o.AlwaysSeal = tc.clientSeal
			o.TLSConfig = &tls.Config{RootCAs: ts.pool, ServerName: "example.com", InsecureSkipVerify: tc.insecure}
			creg := prometheus.NewRegistry()
			o.Registerer = creg
			c, err := Dial(ctxT(t), tc.scheme+"://"+p.Addr()+path, o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc := acceptWithin(t, ts.srv)
			defer sc.Close()
			// A transport mode the peers disagree on never gets data
			// through: the deadline turns that into a failure, not a hang.
			c.SetDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck
			go io.Copy(sc, sc)                              //nolint:errcheck // the echo ends with the session

			want := make([]byte, 1<<20)
			for i := range want {
				want[i] = byte(rand.Uint32())
			}
			werr := make(chan error, 1)
			go func() {
				for b := want; len(b) > 0; {
					n := min(len(b), 1+rand.IntN(50_000))
					if _, err := c.Write(b[:n]); err != nil {
						werr <- err
						return
					}
					b = b[n:]
				}
				werr <- nil
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("echo differs")
			}
			if _, killed, _ := p.Stats(); killed == 0 {
				t.Fatal("no transport was cut")
			}
			for side, reg := range map[string]*prometheus.Registry{"client": creg, "server": ts.reg} {
				sealed := testenv.MetricValue(t, reg, "dualgate_resume_transports_total", "frames", "sealed")
				plain := testenv.MetricValue(t, reg, "dualgate_resume_transports_total", "frames", "plain_in_tls")
				if tc.plain && (plain < 2 || sealed != 0) || !tc.plain && (sealed < 2 || plain != 0) {
					t.Errorf("%s: %v sealed and %v plain-in-TLS transports; want all plain=%v (more than one)", side, sealed, plain, tc.plain)
				}
			}
			if n := testenv.MetricValue(t, ts.reg, "dualgate_resume_resumes_total"); n < 1 {
				t.Errorf("%v resumes", n)
			}
		})
	}
}

// TestPlainFrameOnSealedTransport checks that a peer cannot switch a sealed
// transport to plain frames: an unsealed frame there does not authenticate
// and ends the transport, not the session.
func TestPlainFrameOnSealedTransport(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// The client offered plain-in-TLS frames; the server declined.
	hello := clientHello{version: ProtocolVersion, suite: SuiteAESGCM, pattern: PatternNN, plain: true}
	_, _, sres := runVectorHandshake(t, key, hello, helloPayload{window: DefaultWindow},
		serverPayload{window: DefaultWindow, hasMode: true}, nil, "declined")
	l := &link{recv: newSheddingCipher(sres.suite, sres.recv), plain: sres.plain}
	if l.plain {
		t.Fatal("declined offer gave a plain link")
	}
	if err := l.handleMessage(appendFrame(nil, &frame{typ: framePing, num: 1})); err != errTampered {
		t.Fatalf("plain PING on a sealed transport: %v, want errTampered", err)
	}
}
