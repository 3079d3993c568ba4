package wsbridge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dualgate/dualgate/wsbridge"
	proxyproto "github.com/pires/go-proxyproto"
)

func TestBridgeWSUpstreamInvalidText(t *testing.T) {
	up := httptestWS(t, func(ctx context.Context, c *websocket.Conn) {
		c.Write(ctx, websocket.MessageText, []byte{0xff, 0xfe})
		c.Read(ctx)
	})
	b, _ := newBridger(t, []string{"/w=" + up}, nil)
	gw := startWSGateway(t, b)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4011 || ce.Reason != "upstream sent an invalid text message" {
		t.Fatalf("got %v, want 4011 for invalid UTF-8 text", err)
	}
}

func TestBridgeWSSUpstream(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, p, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("tls:"), p...))
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/up"
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	t.Run("trusted", func(t *testing.T) {
		b, _ := newBridger(t, []string{"/t=" + url}, &wsbridge.Options{UpstreamTLSConfig: &tls.Config{RootCAs: pool}})
		gw := startWSGateway(t, b)
		ctx := testCtx(t)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/t", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.Write(ctx, websocket.MessageText, []byte("hi"))
		typ, p, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(p) != "tls:hi" {
			t.Fatalf("got %v %q %v", typ, p, err)
		}
		_, _, err = c.Read(ctx)
		if websocket.CloseStatus(err) != 4011 {
			t.Fatalf("after the upstream's close: %v, want 4011", err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		b, reg := newBridger(t, []string{"/t=" + url}, nil)
		_, server := tcpPair(t)
		sess := newRouteSession(server, "/t")
		waitErr(t, runBridge(t, b, sess))
		if code, reason := sess.closeStatus(t); code != wsbridge.CloseUpstreamUnreachable || reason != "upstream unreachable: TLS handshake failed" {
			t.Fatalf("closed with %d %q", code, reason)
		}
		if v := metricValue(t, reg, "dualgate_wsbridge_upstream_dial_errors_total", "reason", "tls"); v != 1 {
			t.Fatalf("tls dial errors = %v", v)
		}
	})
}

func TestBridgeDialTimeout(t *testing.T) {
	// An upstream that accepts TCP but never answers the WebSocket handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
	b, reg := newBridger(t, []string{"/slow=ws://" + ln.Addr().String() + "/"}, &wsbridge.Options{DialTimeout: 200 * time.Millisecond})
	_, server := tcpPair(t)
	sess := newRouteSession(server, "/slow")
	waitErr(t, runBridge(t, b, sess))
	if code, reason := sess.closeStatus(t); code != wsbridge.CloseUpstreamUnreachable || reason != "upstream unreachable: timed out" {
		t.Fatalf("closed with %d %q", code, reason)
	}
	if v := metricValue(t, reg, "dualgate_wsbridge_upstream_dial_errors_total", "reason", "timeout"); v != 1 {
		t.Fatalf("timeout dial errors = %v", v)
	}
}

func TestBridgeWSUpstreamMessageTooBig(t *testing.T) {
	up := httptestWS(t, func(ctx context.Context, c *websocket.Conn) {
		c.Write(ctx, websocket.MessageBinary, make([]byte, 2<<10))
		c.Read(ctx)
	})
	b, _ := newBridger(t, []string{"/w=" + up}, &wsbridge.Options{MaxMessageSize: 1 << 10})
	gw := startWSGateway(t, b)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4011 || ce.Reason != "upstream message too big" {
		t.Fatalf("got %v, want 4011 upstream message too big", err)
	}
}

func TestBridgeWSUpstreamCloseReason(t *testing.T) {
	up := httptestWS(t, func(ctx context.Context, c *websocket.Conn) {
		c.Write(ctx, websocket.MessageText, []byte("last words"))
		c.Close(4321, "maintenance")
	})
	b, _ := newBridger(t, []string{"/w=" + up}, nil)
	gw := startWSGateway(t, b)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	typ, p, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(p) != "last words" {
		t.Fatalf("got %v %q %v", typ, p, err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4011 || ce.Reason != "upstream closed the connection (4321): maintenance" {
		t.Fatalf("close = %v, want 4011 with the upstream's code and reason", err)
	}
}

func TestBridgeDialFailure(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name, route, reason, metric string
	}{
		{"tcp-refused", "/d=tcp://" + dead, "upstream unreachable: connection refused", "refused"},
		{"unix-missing", "/d=unix://" + t.TempDir() + "/none.sock", "upstream unreachable: no such socket", "not_found"},
		{"ws-refused", "/d=ws://" + dead + "/x", "upstream unreachable: connection refused", "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, reg := newBridger(t, []string{tt.route}, nil)
			_, server := tcpPair(t)
			sess := newRouteSession(server, "/d")
			err := waitErr(t, runBridge(t, b, sess))
			var de *wsbridge.DialError
			if !errors.As(err, &de) || de.Reason != tt.metric {
				t.Fatalf("Bridge error = %v, want a DialError with reason %q", err, tt.metric)
			}
			code, reason := sess.closeStatus(t)
			if code != wsbridge.CloseUpstreamUnreachable || reason != tt.reason {
				t.Fatalf("session closed with %d %q, want 4010 %q", code, reason, tt.reason)
			}
			if strings.Contains(reason, dead) {
				t.Fatalf("reason %q leaks the upstream address", reason)
			}
			got := metricValue(t, reg, "dualgate_wsbridge_upstream_dial_errors_total", "route", "/d", "reason", tt.metric)
			if got != 1 {
				t.Fatalf("dial error metric = %v, want 1", got)
			}
		})
	}
}

func TestBridgeProxyHeader(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hdrs := make(chan *proxyproto.Header, 1)
			serveListener(t, ln, func(c net.Conn) {
				br := bufio.NewReader(c)
				h, err := proxyproto.Read(br)
				if err != nil {
					hdrs <- nil
					return
				}
				hdrs <- h
				io.Copy(c, br)
			})
			b, _ := newBridger(t, []string{"/p=tcp://" + ln.Addr().String() + "?proxy=" + v}, nil)
			client, server := tcpPair(t)
			sess := newRouteSession(server, "/p")
			done := runBridge(t, b, sess)
			client.SetDeadline(time.Now().Add(testTimeout))
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo after header: %q %v", buf, err)
			}
			h := <-hdrs
			if h == nil {
				t.Fatal("upstream could not parse the PROXY header")
			}
			wantVer := byte(1)
			if v == "v2" {
				wantVer = 2
			}
			src, _, ok := h.TCPAddrs()
			if h.Version != wantVer || !ok || src.String() != client.LocalAddr().String() {
				t.Fatalf("header v%d source %v, want v%d source %v", h.Version, src, wantVer, client.LocalAddr())
			}
			client.Close()
			waitErr(t, done)
		})
	}
}
