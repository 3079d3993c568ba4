package wsbridge_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/wsbridge"
)

func TestEndToEndEcho(t *testing.T) {
	tcp := startTCPEcho(t)
	unix := startUnixEcho(t)
	ws := startWSEcho(t)
	g := startGateway(t, []string{
		"/tcp=tcp://" + tcp,
		"/unix=unix://" + unix,
		"/ws=ws" + strings.TrimPrefix(ws.URL, "http") + "/echo",
		"/stream=builtin:echo",
	}, nil, nil)
	for _, secure := range []bool{false, true} {
		for _, route := range []string{"/tcp", "/unix", "/ws", "/stream"} {
			name := fmt.Sprintf("%s/secure=%v", route, secure)
			t.Run(name, func(t *testing.T) {
				ctx := testCtx(t)
				c, err := resume.Dial(ctx, g.url(secure, route), g.dialOpts())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				keepsBoundaries := route == "/ws" || route == "/stream"
				msgs := [][]byte{[]byte("hello"), bytes.Repeat([]byte{7}, 100<<10), []byte("bye")}
				for i, m := range msgs {
					typ := resume.MessageBinary
					if i%2 == 0 {
						typ = resume.MessageText
					}
					if err := c.WriteMessage(ctx, typ, m); err != nil {
						t.Fatal(err)
					}
				}
				if keepsBoundaries {
					for i, m := range msgs {
						typ, p, err := c.ReadMessage(ctx)
						if err != nil {
							t.Fatal(err)
						}
						wantTyp := resume.MessageBinary
						if i%2 == 0 {
							wantTyp = resume.MessageText
						}
						if typ != wantTyp || !bytes.Equal(p, m) {
							t.Fatalf("message %d: got %v/%d bytes, want %v/%d", i, typ, len(p), wantTyp, len(m))
						}
					}
				} else {
					want := bytes.Join(msgs, nil)
					got := make([]byte, len(want))
					if _, err := io.ReadFull(c, got); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatal("stream echo mismatch")
					}
				}
				if err := c.Close(); err != nil {
					t.Fatalf("clean close: %v", err)
				}
			})
		}
	}
}

func TestEndToEndUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	g := startGateway(t, []string{"/down=tcp://" + dead}, nil, nil)
	for _, secure := range []bool{false, true} {
		ctx := testCtx(t)
		c, err := resume.Dial(ctx, g.url(secure, "/down"), g.dialOpts())
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.ReadMessage(ctx)
		var ce *resume.CloseError
		if !errors.As(err, &ce) || ce.Code != resume.CloseUpstreamUnreachable || ce.Reason != "upstream unreachable: connection refused" {
			t.Fatalf("secure=%v: ReadMessage = %v, want 4010 connection refused", secure, err)
		}
		c.Close()
	}
}

func TestEndToEndUpstreamClosesMidStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 3<<20)
	rand.Read(body)
	serveListener(t, ln, func(c net.Conn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil { // "start"
			return
		}
		c.Write(body)
	})
	g := startGateway(t, []string{"/mid=tcp://" + ln.Addr().String()}, nil, nil)
	ctx := testCtx(t)
	c, err := resume.Dial(ctx, g.url(true, "/mid"), g.dialOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("start")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	var ce *resume.CloseError
	if !errors.As(err, &ce) || ce.Code != resume.CloseUpstreamClosed || ce.Reason != "upstream closed the connection" {
		t.Fatalf("read ended with %v, want 4011", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes before the close, want all %d", len(got), len(body))
	}
}

func TestHandlerRejects(t *testing.T) {
	g := startGateway(t, []string{"/stream=builtin:echo"}, nil, nil)
	ctx := testCtx(t)

	// A WebSocket client that does not speak the protocol.
	c, _, err := websocket.Dial(ctx, g.url(false, "/stream"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4012 || !strings.Contains(ce.Reason, "dualgate.v1") {
		t.Fatalf("plain WebSocket client got %v, want close 4012 naming dualgate.v1", err)
	}
	c.CloseNow()

	// Unknown path: plain 404.
	resp, err := http.Get(g.ws.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d, want 404", resp.StatusCode)
	}

	// NotFound option: other paths go to the next handler.
	h, err := wsbridge.NewHandler(g.srv, wsbridge.DefaultRoutes(), &wsbridge.HandlerOptions{
		NotFound: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "demo page") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Body.String() != "demo page" {
		t.Fatalf("NotFound handler not used: %q", rec.Body.String())
	}
	h.Close()

	// A cross-origin browser page is refused; same origin is accepted.
	hdr := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err = websocket.Dial(ctx, g.url(false, "/stream"), &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{resume.Subprotocol}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: err %v, resp %v; want 403", err, resp)
	}
	hdr = http.Header{"Origin": {g.ws.URL}}
	c, _, err = websocket.Dial(ctx, g.url(false, "/stream"), &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{resume.Subprotocol}})
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	c.CloseNow()
	if v := metricValue(t, g.reg, "dualgate_wsbridge_upgrades_total", "result", "not_dualgate"); v != 1 {
		t.Fatalf("not_dualgate metric = %v", v)
	}
}

func TestEndToEndInfo(t *testing.T) {
	// The route, client address and TLS flag reach the session and the
	// upstream's PROXY header.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, echoHandler)
	g := startGateway(t, []string{"/p=tcp://" + ln.Addr().String() + "?proxy=v1"}, nil, nil)
	ctx := testCtx(t)
	c, err := resume.Dial(ctx, g.url(false, "/p"), g.dialOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The echo upstream returns the PROXY header it received.
	line := make([]byte, len("PROXY TCP4 127.0.0.1 "))
	if _, err := io.ReadFull(c, line); err != nil {
		t.Fatal(err)
	}
	if string(line) != "PROXY TCP4 127.0.0.1 " {
		t.Fatalf("upstream saw %q", line)
	}
	_ = wsbridge.Info{}
}
