package resume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Tests of the WebSocket framing layer (wsconn.go, ws_upgrade.go) over real
// TCP (and TLS) on 127.0.0.1. The independent peer is coder/websocket where
// it can say what we want to send, and a hand-written raw peer (its own
// handshake and frame codec, no gobwas) where we need bytes no library
// sends: protocol violations, exact lengths, interleaved control frames.

// wsSides names the two ends our transport can be.
var wsSides = []struct {
	name   string
	client bool
}{{"server", false}, {"client", true}}

// wsPair returns one of our transports (the server end behind
// UpgradeWebSocket, or the client end from dialWebSocket) connected to a
// coder/websocket peer, over TCP or TLS.
func wsPair(tb testing.TB, client, useTLS bool) (*wsConn, *websocket.Conn) {
	tb.Helper()
	if client {
		return wsClientPair(tb, useTLS)
	}
	return wsServerPair(tb, useTLS)
}

func wsNewHTTPServer(tb testing.TB, h http.HandlerFunc, useTLS bool) *httptest.Server {
	tb.Helper()
	var ts *httptest.Server
	if useTLS {
		ts = httptest.NewTLSServer(h)
	} else {
		ts = httptest.NewServer(h)
	}
	tb.Cleanup(ts.Close)
	return ts
}

// wsServerPair: our server end, a coder/websocket client.
func wsServerPair(tb testing.TB, useTLS bool) (*wsConn, *websocket.Conn) {
	tb.Helper()
	got := make(chan *wsConn, 1)
	errc := make(chan error, 1)
	ts := wsNewHTTPServer(tb, func(w http.ResponseWriter, r *http.Request) {
		t, err := UpgradeWebSocket(w, r)
		if err != nil {
			errc <- err
			return
		}
		got <- t.(*wsConn)
	}, useTLS)
	ctx := ctxT(tb)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), &websocket.DialOptions{
		HTTPClient:   ts.Client(),
		Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	tb.Cleanup(func() { c.CloseNow() })
	select {
	case t := <-got:
		tb.Cleanup(func() { t.closeNow() })
		return t, c
	case err := <-errc:
		tb.Fatal(err)
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return nil, nil
}

// wsClientPair: our client end, a coder/websocket server.
func wsClientPair(tb testing.TB, useTLS bool) (*wsConn, *websocket.Conn) {
	tb.Helper()
	got := make(chan *websocket.Conn, 1)
	ts := wsNewHTTPServer(tb, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		got <- c
	}, useTLS)
	ctx := ctxT(tb)
	t, err := wsDial(ctx, ts, useTLS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.closeNow() })
	select {
	case c := <-got:
		c.SetReadLimit(1 << 20)
		tb.Cleanup(func() { c.CloseNow() })
		return t, c
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return nil, nil
}

// wsDial runs our client's upgrade against ts over a fresh TCP (or TLS)
// connection.
func wsDial(ctx context.Context, ts *httptest.Server, useTLS bool) (*wsConn, error) {
	raw, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		return nil, err
	}
	c, scheme := raw, "ws"
	if useTLS {
		cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		cfg.ServerName = "example.com" // in httptest's certificate
		c, scheme = tls.Client(raw, cfg), "wss"
	}
	u := &url.URL{Scheme: scheme, Host: ts.Listener.Addr().String(), Path: "/"}
	t, err := dialWebSocket(ctx, c, u, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	return t, nil
}

func wsPayload(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

var wsSizes = []int{1, 2, 125, 126, 127, 1000, 4096, 32 << 10, 65534, 65535}

func TestWSConnRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, side := range wsSides {
		for _, useTLS := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%v", side.name, useTLS), func(t *testing.T) {
				tr, peer := wsPair(t, side.client, useTLS)
				if got := tr.raw != nil; got == useTLS {
					t.Fatalf("reads through rawio: %v, want %v", got, !useTLS)
				}
				ctx := ctxT(t)
				for _, n := range wsSizes {
					p := wsPayload(rng, n)
					if err := peer.Write(ctx, websocket.MessageBinary, p); err != nil {
						t.Fatal(err)
					}
					got, err := tr.ReadMessage(ctx)
					if err != nil {
						t.Fatalf("%d B: %v", n, err)
					}
					if !bytes.Equal(got, p) {
						t.Fatalf("%d B: read %d B, not what was sent", n, len(got))
					}
					if err := tr.WriteMessage(ctx, p); err != nil {
						t.Fatalf("%d B: %v", n, err)
					}
					typ, got, err := peer.Read(ctx)
					if err != nil {
						t.Fatalf("%d B: peer: %v", n, err)
					}
					if typ != websocket.MessageBinary || !bytes.Equal(got, p) {
						t.Fatalf("%d B: peer read %v of %d B, not what was sent", n, typ, len(got))
					}
				}
			})
		}
	}
}

// TestWSConnBurst sends many messages without waiting, so that reads take
// several frames and partial frames at once and the read buffer wraps.
func TestWSConnBurst(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			rng := rand.New(rand.NewPCG(3, 4))
			msgs := make([][]byte, 300)
			for i := range msgs {
				n := 1 + rng.IntN(300)
				if i%7 == 0 {
					n = 1 + rng.IntN(maxMessageLen)
				}
				msgs[i] = wsPayload(rng, n)
			}
			errc := make(chan error, 1)
			go func() {
				for _, m := range msgs {
					if err := peer.Write(ctx, websocket.MessageBinary, m); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for i, m := range msgs {
				got, err := tr.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(got, m) {
					t.Fatalf("message %d: %d B, want %d B", i, len(got), len(m))
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// wsAppendBatch frames msgs the way the session flusher does.
func wsAppendBatch(tr *wsConn, b []byte, msgs [][]byte) []byte {
	for _, m := range msgs {
		b = tr.beginMessage(b, len(m))
		b = append(b, m...)
		tr.endMessage(b[len(b)-len(m):])
	}
	return b
}

func TestWSConnWriteBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			for round := range 3 {
				var msgs [][]byte
				for _, n := range []int{1, 125, 126, 65535, 300, 127, 2} {
					msgs = append(msgs, wsPayload(rng, n))
				}
				if err := tr.writeBatch(ctx, wsAppendBatch(tr, nil, msgs)); err != nil {
					t.Fatal(err)
				}
				for i, m := range msgs {
					typ, got, err := peer.Read(ctx)
					if err != nil {
						t.Fatalf("round %d, message %d: %v", round, i, err)
					}
					if typ != websocket.MessageBinary || !bytes.Equal(got, m) {
						t.Fatalf("round %d, message %d: %v of %d B, want binary of %d B", round, i, typ, len(got), len(m))
					}
				}
			}
		})
	}
}

// wsWriteFragmented writes one binary message with a coder/websocket Writer,
// one frame per chunk (and an empty final continuation frame).
func wsWriteFragmented(ctx context.Context, c *websocket.Conn, chunks ...[]byte) error {
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		return err
	}
	for _, p := range chunks {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Close()
}

func TestWSConnFragmented(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			for _, sizes := range [][]int{{1, 1}, {1, 1000, 30000, 4}, {65534, 1}, {40000, 25535}} {
				var chunks [][]byte
				var want []byte
				for _, n := range sizes {
					p := wsPayload(rng, n)
					chunks = append(chunks, p)
					want = append(want, p...)
				}
				if err := wsWriteFragmented(ctx, peer, chunks...); err != nil {
					t.Fatal(err)
				}
				got, err := tr.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("%v: %v", sizes, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%v: read %d B, not what was sent", sizes, len(got))
				}
				if tr.held == nil {
					t.Fatalf("%v: not assembled from fragments: the peer sent one frame?", sizes)
				}
			}
			// Still in step: a plain message after the fragmented ones.
			if err := peer.Write(ctx, websocket.MessageBinary, []byte("after")); err != nil {
				t.Fatal(err)
			}
			if got, err := tr.ReadMessage(ctx); err != nil || string(got) != "after" {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

// wsReadAsync runs ReadMessage in a goroutine; the test waits for its result.
func wsReadAsync(ctx context.Context, tr *wsConn) <-chan wsReadResult {
	ch := make(chan wsReadResult, 1)
	go func() {
		msg, err := tr.ReadMessage(ctx)
		ch <- wsReadResult{append([]byte(nil), msg...), err}
	}()
	return ch
}

type wsReadResult struct {
	msg []byte
	err error
}

func wsWait(tb testing.TB, ch <-chan wsReadResult) wsReadResult {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("ReadMessage did not return")
	}
	return wsReadResult{}
}

func TestWSConnPingPong(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			res := wsReadAsync(ctx, tr)
			pctx := peer.CloseRead(ctx) // reads the pongs for Ping
			for range 3 {
				pingCtx, cancel := context.WithTimeout(pctx, 5*time.Second)
				err := peer.Ping(pingCtx)
				cancel()
				if err != nil {
					t.Fatalf("ping not answered: %v", err)
				}
			}
			if err := peer.Write(ctx, websocket.MessageBinary, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if r := wsWait(t, res); r.err != nil || string(r.msg) != "x" {
				t.Fatalf("got %q, %v", r.msg, r.err)
			}
		})
	}
}

func TestWSConnPeerClose(t *testing.T) {
	for _, side := range wsSides {
		for _, reason := range []string{"bye", ""} {
			t.Run(fmt.Sprintf("%s/reason=%q", side.name, reason), func(t *testing.T) {
				tr, peer := wsPair(t, side.client, false)
				ctx := ctxT(t)
				res := wsReadAsync(ctx, tr)
				// Close returns nil only once the close handshake completed:
				// our transport answered the close frame.
				if err := peer.Close(websocket.StatusGoingAway, reason); err != nil {
					t.Fatalf("peer close: %v", err)
				}
				r := wsWait(t, res)
				if r.err == nil || !strings.Contains(r.err.Error(), "(1001)") {
					t.Fatalf("want an error with the peer's code, got %v", r.err)
				}
				if reason != "" && !strings.Contains(r.err.Error(), reason) {
					t.Fatalf("reason %q missing in %v", reason, r.err)
				}
				if reason == "" && !errors.Is(r.err, io.EOF) {
					t.Fatalf("want io.EOF wrapped, got %v", r.err)
				}
				if err := tr.WriteMessage(ctx, []byte("late")); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("write after the close handshake: %v", err)
				}
			})
		}
	}
}

// TestWSConnCloseCode checks that session codes reach the peer in a close
// frame and that transport codes close at once.
func TestWSConnCloseCode(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name+"/session", func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			if err := tr.Close(CloseNotDualgate, "not for you"); err != nil {
				t.Fatal(err)
			}
			_, _, err := peer.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusCode(CloseNotDualgate) || ce.Reason != "not for you" {
				t.Fatalf("peer got %v, want close %d", err, CloseNotDualgate)
			}
			if _, err := tr.ReadMessage(ctx); err == nil {
				t.Fatal("ReadMessage after Close succeeded")
			}
			if err := tr.WriteMessage(ctx, []byte("x")); err == nil {
				t.Fatal("WriteMessage after Close succeeded")
			}
			if err := tr.Close(CloseNormal, ""); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
		t.Run(side.name+"/transport", func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			if err := tr.Close(CloseTransportDead, "dead"); err != nil {
				t.Fatal(err)
			}
			_, _, err := peer.Read(ctx)
			if err == nil || websocket.CloseStatus(err) != -1 {
				t.Fatalf("peer got %v, want the connection closed without a close frame", err)
			}
		})
	}
}

// TestWSConnCloseUnblocksRead: Close from another goroutine ends a waiting
// ReadMessage.
func TestWSConnCloseUnblocksRead(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, _ := wsPair(t, side.client, false)
			res := wsReadAsync(ctxT(t), tr)
			time.Sleep(20 * time.Millisecond)
			tr.Close(CloseSuperseded, "") //nolint:errcheck
			if r := wsWait(t, res); !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("want net.ErrClosed, got %v", r.err)
			}
		})
	}
}

func TestWSConnReadContext(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)

			cctx, cancel := context.WithCancel(ctx)
			res := wsReadAsync(cctx, tr)
			time.Sleep(20 * time.Millisecond)
			cancel()
			if r := wsWait(t, res); !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled: want context.Canceled, got %v", r.err)
			}

			dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			r := wsWait(t, wsReadAsync(dctx, tr))
			if !errors.Is(r.err, context.DeadlineExceeded) && !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Fatalf("deadline: want a deadline error, got %v", r.err)
			}

			// The transport still works, without the old deadlines.
			res = wsReadAsync(ctx, tr)
			time.Sleep(100 * time.Millisecond)
			if err := peer.Write(ctx, websocket.MessageBinary, []byte("later")); err != nil {
				t.Fatal(err)
			}
			if r := wsWait(t, res); r.err != nil || string(r.msg) != "later" {
				t.Fatalf("after the deadline: got %q, %v", r.msg, r.err)
			}
		})
	}
}

// TestWSConnWriteContext: a write to a peer that does not read ends at the
// context's deadline.
func TestWSConnWriteContext(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, _ := wsPair(t, side.client, false)
			ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
			defer cancel()
			p := make([]byte, maxMessageLen)
			var err error
			for i := 0; err == nil; i++ {
				if i > 10000 { // 650 MB: loopback buffers are a few MB
					t.Fatal("writes never blocked")
				}
				err = tr.WriteMessage(ctx, p)
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("want a deadline error, got %v", err)
			}
		})
	}
}

// wsHoldsReadBuf reports whether tr holds a read buffer. The test calls it
// for a transport parked in the poller by another goroutine, which wrote
// the field before parking; the goroutine dump that found it parked stopped
// the world, but the race detector cannot know that.
//
//go:norace
func wsHoldsReadBuf(tr *wsConn) bool { return tr.rb.bp != nil }

// wsParkedInRawio reports whether a goroutine started by wsReadAsync waits
// in the poller inside rawio.
func wsParkedInRawio() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "rawio.(*Reader).Read") &&
			strings.Contains(g, "created by github.com/dualgate/dualgate/resume.wsReadAsync") {
			return true
		}
	}
	return false
}

// TestWSConnIdleHoldsNoBuffer: a transport waiting for data through rawio
// has given its read buffer back.
func TestWSConnIdleHoldsNoBuffer(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			tr, peer := wsPair(t, side.client, false)
			ctx := ctxT(t)
			if tr.raw == nil {
				t.Fatal("not reading through rawio")
			}
			for i := range 2 {
				if err := peer.Write(ctx, websocket.MessageBinary, []byte("hello")); err != nil {
					t.Fatal(err)
				}
				msg, err := tr.ReadMessage(ctx)
				if err != nil || string(msg) != "hello" {
					t.Fatalf("got %q, %v", msg, err)
				}
				if !wsHoldsReadBuf(tr) { // the message lives in it
					t.Fatal("no read buffer under the message just returned")
				}
				res := wsReadAsync(ctx, tr)
				deadline := time.Now().Add(10 * time.Second)
				for !wsParkedInRawio() {
					if time.Now().After(deadline) {
						t.Fatal("ReadMessage never parked in rawio")
					}
					time.Sleep(5 * time.Millisecond)
				}
				if wsHoldsReadBuf(tr) {
					t.Fatalf("round %d: waiting ReadMessage holds a read buffer", i)
				}
				if err := peer.Write(ctx, websocket.MessageBinary, []byte("hello")); err != nil {
					t.Fatal(err)
				}
				if r := wsWait(t, res); r.err != nil || string(r.msg) != "hello" {
					t.Fatalf("got %q, %v", r.msg, r.err)
				}
			}
		})
	}
}

func TestUpgradeWebSocketNotDualgate(t *testing.T) {
	errc := make(chan error, 1)
	ts := wsNewHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		tr, err := UpgradeWebSocket(w, r)
		if tr != nil {
			tr.Close(CloseTransportDead, "") //nolint:errcheck
		}
		errc <- err
	}, false)
	ctx := ctxT(t)

	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil) // no subprotocol
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := <-errc; !errors.Is(err, ErrNotDualgate) {
		t.Fatalf("server: want ErrNotDualgate, got %v", err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusCode(CloseNotDualgate) {
		t.Fatalf("client: want close %d, got %v", CloseNotDualgate, err)
	}

	// Not an upgrade at all: answered, and an error.
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET answered %s", resp.Status)
	}
	if err := <-errc; err == nil || errors.Is(err, ErrNotDualgate) {
		t.Fatalf("plain GET: %v", err)
	}
}

func TestDialWebSocketNotDualgate(t *testing.T) {
	got := make(chan *websocket.Conn, 1)
	ts := wsNewHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil) // selects no subprotocol
		if err == nil {
			got <- c
		}
	}, false)
	_, err := wsDial(ctxT(t), ts, false)
	if CloseStatus(err) != CloseNotDualgate {
		t.Fatalf("want close %d, got %v", CloseNotDualgate, err)
	}
	(<-got).CloseNow()
}

// The raw peer: a hand-written handshake and frame codec.

const wsTestKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3

func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsRawPeer is the other end of one of our transports, speaking bytes.
type wsRawPeer struct {
	c      net.Conn
	br     *bufio.Reader
	client bool // the raw peer is the client: it must mask, we must not
}

// wsRawPair returns our transport (server end if ourClient is false)
// connected to a raw peer over real TCP after a real HTTP upgrade. early
// are bytes the raw peer sends in the same write as its side of the
// handshake (frames before the upgrade finished).
func wsRawPair(tb testing.TB, ourClient bool, early []byte) (*wsConn, *wsRawPeer) {
	tb.Helper()
	if ourClient {
		return wsRawServerPair(tb, early)
	}
	return wsRawClientPair(tb, early)
}

func wsRawClientPair(tb testing.TB, early []byte) (*wsConn, *wsRawPeer) {
	tb.Helper()
	got := make(chan Transport, 1)
	ts := wsNewHTTPServer(tb, func(w http.ResponseWriter, r *http.Request) {
		t, err := UpgradeWebSocket(w, r)
		if err != nil {
			tb.Error(err)
		}
		got <- t
	}, false)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + ts.Listener.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + wsTestKey + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + Subprotocol + "\r\n\r\n"
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAcceptKey(wsTestKey) ||
		resp.Header.Get("Sec-WebSocket-Protocol") != Subprotocol {
		tb.Fatalf("bad upgrade response: %s %v", resp.Status, resp.Header)
	}
	tr := (<-got).(*wsConn)
	tb.Cleanup(func() { tr.closeNow() })
	return tr, &wsRawPeer{c: c, br: br, client: true}
}

func wsRawServerPair(tb testing.TB, early []byte) (*wsConn, *wsRawPeer) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		br  *bufio.Reader
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acc <- accepted{err: err}
			return
		}
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			acc <- accepted{err: err}
			return
		}
		if req.Header.Get("Sec-WebSocket-Protocol") != Subprotocol || req.Header.Get("Sec-WebSocket-Version") != "13" {
			c.Close()
			acc <- accepted{err: fmt.Errorf("bad upgrade request: %v", req.Header)}
			return
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + wsAcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
			"Sec-WebSocket-Protocol: " + Subprotocol + "\r\n\r\n"
		if _, err := c.Write(append([]byte(resp), early...)); err != nil {
			c.Close()
			acc <- accepted{err: err}
			return
		}
		acc <- accepted{c: c, br: br}
	}()
	ctx := ctxT(tb)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := dialWebSocket(ctx, c, &url.URL{Scheme: "ws", Host: ln.Addr().String(), Path: "/"}, nil)
	a := <-acc
	if a.c != nil {
		tb.Cleanup(func() { a.c.Close() })
	}
	if err != nil {
		c.Close()
		tb.Fatal(err)
	}
	if a.err != nil {
		tb.Fatal(a.err)
	}
	tb.Cleanup(func() { tr.closeNow() })
	return tr, &wsRawPeer{c: a.c, br: a.br, client: false}
}

// wsFrame encodes a frame; b0 is FIN, RSV and opcode; the payload is masked
// when masked is set. The length takes its shortest form.
func wsFrame(b0 byte, masked bool, payload []byte) []byte {
	b := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b[1] |= 0x80
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// frame encodes a frame as this peer must (masked from a client).
func (p *wsRawPeer) frame(b0 byte, payload []byte) []byte { return wsFrame(b0, p.client, payload) }

func (p *wsRawPeer) write(tb testing.TB, b ...[]byte) {
	tb.Helper()
	if _, err := p.c.Write(bytes.Join(b, nil)); err != nil {
		tb.Fatal(err)
	}
}

// wsTestFrame is a decoded frame.
type wsTestFrame struct {
	b0      byte
	masked  bool
	payload []byte
}

func (f wsTestFrame) op() byte { return f.b0 & 0x0F }

// wsReadFrame decodes one frame from r, unmasking it.
func wsReadFrame(r io.Reader) (wsTestFrame, error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return wsTestFrame{}, err
	}
	f := wsTestFrame{b0: h[0], masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:]))
	case 127:
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[:])
	}
	if n > 1<<20 {
		return f, fmt.Errorf("frame of %d B", n)
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// read reads the next frame our transport sent, checking its masking.
func (p *wsRawPeer) read(tb testing.TB) wsTestFrame {
	tb.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	f, err := wsReadFrame(p.br)
	if err != nil {
		tb.Fatalf("raw peer: %v", err)
	}
	if f.masked != !p.client {
		tb.Fatalf("frame masked: %v, from the %s", f.masked, map[bool]string{true: "server", false: "client"}[p.client])
	}
	return f
}

// readClose reads frames up to a close frame and returns its code, then
// checks that our transport closed the connection.
func (p *wsRawPeer) readClose(tb testing.TB) uint16 {
	tb.Helper()
	for {
		f := p.read(tb)
		if f.op() != wsOpClose {
			continue
		}
		if len(f.payload) < 2 {
			tb.Fatalf("close frame without a code: %x", f.payload)
		}
		_, err := p.br.ReadByte()
		if err == nil || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
			tb.Fatalf("after the close frame: %v, want the connection closed", err)
		}
		return binary.BigEndian.Uint16(f.payload)
	}
}

// TestWSConnViolations sends what RFC 6455 (or the protocol's 64 KiB
// limit) forbids and checks the close code the peer gets and the local
// error.
func TestWSConnViolations(t *testing.T) {
	u64 := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	tests := []struct {
		name  string
		bytes func(p *wsRawPeer) []byte // what the raw peer sends
		code  uint16                    // the close code our transport must send; 0: no close frame
		check func(error) bool          // the local error; nil: any error
	}{
		{"text message", func(p *wsRawPeer) []byte { return p.frame(0x81, []byte("hi")) }, wsStatusUnsupportedData,
			func(err error) bool { return CloseStatus(err) == CloseProtocolError }},
		{"wrong masking", func(p *wsRawPeer) []byte { return wsFrame(0x82, !p.client, []byte("hi")) }, wsStatusProtocolError, nil},
		{"RSV1", func(p *wsRawPeer) []byte { return p.frame(0xC2, []byte("hi")) }, wsStatusProtocolError, nil},
		{"RSV3", func(p *wsRawPeer) []byte { return p.frame(0x92, []byte("hi")) }, wsStatusProtocolError, nil},
		{"reserved data opcode", func(p *wsRawPeer) []byte { return p.frame(0x83, []byte("hi")) }, wsStatusProtocolError, nil},
		{"reserved control opcode", func(p *wsRawPeer) []byte { return p.frame(0x8B, nil) }, wsStatusProtocolError, nil},
		{"ping of 126 bytes", func(p *wsRawPeer) []byte { return p.frame(0x89, make([]byte, 126)) }, wsStatusProtocolError, nil},
		{"fragmented ping", func(p *wsRawPeer) []byte { return p.frame(0x09, []byte("a")) }, wsStatusProtocolError, nil},
		{"close of 126 bytes", func(p *wsRawPeer) []byte { return p.frame(0x88, make([]byte, 126)) }, wsStatusProtocolError, nil},
		{"65536 bytes", func(p *wsRawPeer) []byte { return p.frame(0x82, make([]byte, maxMessageLen+1)) }, wsStatusTooBig, nil},
		{"64-bit length 2^63", func(p *wsRawPeer) []byte {
			b := cat([]byte{0x82, 127}, u64(1<<63))
			if p.client {
				b[1] |= 0x80
			}
			return b
		}, wsStatusTooBig, nil},
		{"64-bit length 65536", func(p *wsRawPeer) []byte {
			b := cat([]byte{0x82, 127}, u64(maxMessageLen+1))
			if p.client {
				b[1] |= 0x80
			}
			return b
		}, wsStatusTooBig, nil},
		{"continuation without a message", func(p *wsRawPeer) []byte { return p.frame(0x80, []byte("hi")) }, wsStatusProtocolError, nil},
		{"new message inside a fragmented one", func(p *wsRawPeer) []byte {
			return cat(p.frame(0x02, []byte("a")), p.frame(0x82, []byte("b")))
		}, wsStatusProtocolError, nil},
		{"fragments over 65535 bytes", func(p *wsRawPeer) []byte {
			return cat(p.frame(0x02, make([]byte, 40000)), p.frame(0x00, make([]byte, 20000)), p.frame(0x80, make([]byte, 5536)))
		}, wsStatusTooBig, nil},
		{"text inside a fragmented message", func(p *wsRawPeer) []byte {
			return cat(p.frame(0x02, []byte("a")), p.frame(0x81, []byte("b")))
		}, wsStatusUnsupportedData, nil},
		{"empty message", func(p *wsRawPeer) []byte { return p.frame(0x82, nil) }, 0,
			func(err error) bool { return CloseStatus(err) == CloseProtocolError }},
		{"empty fragmented message", func(p *wsRawPeer) []byte {
			return cat(p.frame(0x02, nil), p.frame(0x80, nil))
		}, 0, func(err error) bool { return CloseStatus(err) == CloseProtocolError }},
		{"ends inside a frame", func(p *wsRawPeer) []byte {
			return cat(p.frame(0x82, []byte("whole")), p.frame(0x82, make([]byte, 300))[:100])
		}, 0, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	}
	for _, side := range wsSides {
		for _, tc := range tests {
			t.Run(side.name+"/"+tc.name, func(t *testing.T) {
				tr, p := wsRawPair(t, side.client, nil)
				ctx := ctxT(t)
				p.write(t, tc.bytes(p))
				if tc.name == "ends inside a frame" {
					p.c.(*net.TCPConn).CloseWrite() //nolint:errcheck
				}
				var err error
				for i := 0; err == nil; i++ {
					var msg []byte
					msg, err = tr.ReadMessage(ctx)
					if err == nil && (i > 0 || string(msg) != "whole") {
						t.Fatalf("read a message of %d B", len(msg))
					}
				}
				if tc.check != nil && !tc.check(err) {
					t.Fatalf("unexpected local error %v", err)
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.HasPrefix(err.Error(), "resume: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				if tc.code == 0 {
					return
				}
				if code := p.readClose(t); code != tc.code {
					t.Fatalf("peer got close %d, want %d", code, tc.code)
				}
				if werr := tr.WriteMessage(ctx, []byte("x")); werr == nil {
					t.Fatal("write after a violation succeeded")
				}
			})
		}
	}
}

// TestWSConnRawControl checks what the libraries decide for us: pongs echo
// the ping, control frames may come between fragments, pongs are ignored,
// the 16- and 64-bit length forms are read, and frames sent along with the
// upgrade are not lost.
func TestWSConnRawControl(t *testing.T) {
	for _, side := range wsSides {
		t.Run(side.name, func(t *testing.T) {
			early := wsFrame(0x82, !side.client, []byte("early"))
			tr, p := wsRawPair(t, side.client, early)
			ctx := ctxT(t)
			if msg, err := tr.ReadMessage(ctx); err != nil || string(msg) != "early" {
				t.Fatalf("frame sent with the upgrade: %q, %v", msg, err)
			}
			big := bytes.Repeat([]byte{0xAB}, 70)
			// "abc" with its length in the 16- and the 64-bit form (a zero
			// mask key from a client).
			nonMinimal := func(hdr ...byte) []byte {
				if p.client {
					hdr[1] |= 0x80
					hdr = append(hdr, 0, 0, 0, 0)
				}
				return append(hdr, 'a', 'b', 'c')
			}
			p.write(t,
				p.frame(0x89, []byte("ping-1")),
				p.frame(0x02, []byte("frag-")),
				p.frame(0x8A, []byte("unsolicited pong")),
				p.frame(0x89, []byte("ping-2")),
				p.frame(0x00, big),
				p.frame(0x80, []byte("-end")),
				nonMinimal(0x82, 126, 0, 3),
				nonMinimal(0x82, 127, 0, 0, 0, 0, 0, 0, 0, 3),
				p.frame(0x89, nil),
			)
			want := append(append([]byte("frag-"), big...), "-end"...)
			if msg, err := tr.ReadMessage(ctx); err != nil || !bytes.Equal(msg, want) {
				t.Fatalf("fragmented with control frames between: %q, %v", msg, err)
			}
			for _, form := range []string{"16-bit", "64-bit"} {
				if msg, err := tr.ReadMessage(ctx); err != nil || string(msg) != "abc" {
					t.Fatalf("%s length form: %q, %v", form, msg, err)
				}
			}
			res := wsReadAsync(ctx, tr) // answers the last ping, then waits
			for _, ping := range []string{"ping-1", "ping-2", ""} {
				if f := p.read(t); f.b0 != 0x8A || string(f.payload) != ping {
					t.Fatalf("want pong %q, got %#x %q", ping, f.b0, f.payload)
				}
			}
			p.write(t, p.frame(0x88, binary.BigEndian.AppendUint16(nil, 4000)))
			r := wsWait(t, res)
			if r.err == nil || !strings.Contains(r.err.Error(), "(4000)") {
				t.Fatalf("peer close: %v", r.err)
			}
			if f := p.read(t); f.b0 != 0x88 || !bytes.Equal(f.payload, []byte{0x0F, 0xA0}) {
				t.Fatalf("close answer %#x %x, want the peer's code echoed", f.b0, f.payload)
			}
		})
	}
}
