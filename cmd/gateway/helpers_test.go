package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/resume"
)

const testWait = 60 * time.Second // generous: the machine is shared

// testGateway is a gateway built in-process on 127.0.0.1:0 with a
// temporary data directory.
type testGateway struct {
	*gateway
	dataDir string
	served  chan error
	log     *logBuffer
}

// logBuffer collects the gateway's logs for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestGateway(t testing.TB, args ...string) *testGateway {
	t.Helper()
	dir := t.TempDir()
	cfg, err := parseConfig(append([]string{"-listen", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data")}, args...), envMap(map[string]string{"HOME": dir}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lb := new(logBuffer)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	g, err := newGateway(ctx, cfg, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{gateway: g, dataDir: cfg.DataDir, served: make(chan error, 1), log: lb}
	go func() { tg.served <- g.serve() }()
	t.Cleanup(func() { tg.stop(t) })
	return tg
}

// stop drains the gateway (idempotent).
func (tg *testGateway) stop(t testing.TB) {
	t.Helper()
	if tg.served == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := tg.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-tg.served; err != nil {
		t.Errorf("serve: %v", err)
	}
	tg.served = nil
}

func (tg *testGateway) url(scheme, path string) string {
	return scheme + "://" + tg.addr().String() + path
}

// pool trusts the gateway's dev CA, read from <data-dir>/dev/ca.pem as a
// user would.
func (tg *testGateway) pool(t testing.TB) *x509.CertPool {
	t.Helper()
	return devCAPool(t, tg.dataDir)
}

func devCAPool(t testing.TB, dataDir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "dev", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the dev CA file")
	}
	return pool
}

// dialOpts are resume client options that trust pool and pin key.
func dialOpts(pool *x509.CertPool, key string) *resume.DialOptions {
	return &resume.DialOptions{
		Proxy:            "direct",
		ServerKey:        key,
		TLSConfig:        &tls.Config{RootCAs: pool, ServerName: "localhost"},
		HandshakeTimeout: testWait,
	}
}

func (tg *testGateway) dialOpts(t testing.TB) *resume.DialOptions {
	return dialOpts(tg.pool(t), tg.key.PublicString())
}

func (tg *testGateway) dial(t testing.TB, ctx context.Context, url string) *resume.Conn {
	t.Helper()
	c, err := resume.Dial(ctx, url, tg.dialOpts(t))
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseWithError(resume.CloseNormal, "") })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	t.Cleanup(cancel)
	return ctx
}

// serveListener accepts from ln and runs handle per connection until the
// test ends; the cleanup closes ln and every open connection and waits.
func serveListener(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startTCPEcho starts a TCP echo upstream.
func startTCPEcho(t testing.TB) string {
	ln := listen(t, "tcp", "127.0.0.1:0")
	serveListener(t, ln, echoConn)
	return ln.Addr().String()
}

// startUnixEcho starts a unix-socket echo upstream.
func startUnixEcho(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "echo.sock")
	ln := listen(t, "unix", path)
	serveListener(t, ln, echoConn)
	return path
}

// echoConn echoes until EOF, then closes its write side.
func echoConn(c net.Conn) {
	_, _ = io.Copy(c, c)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// sink is a TCP upstream that records everything it receives per
// connection.
type sink struct {
	addr string
	mu   sync.Mutex
	got  [][]byte
	done chan int // connection index when it ended
}

func startSink(t testing.TB) *sink {
	s := &sink{done: make(chan int, 1024)}
	ln := listen(t, "tcp", "127.0.0.1:0")
	s.addr = ln.Addr().String()
	serveListener(t, ln, func(c net.Conn) {
		s.mu.Lock()
		i := len(s.got)
		s.got = append(s.got, nil)
		s.mu.Unlock()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			s.mu.Lock()
			s.got[i] = append(s.got[i], buf[:n]...)
			s.mu.Unlock()
			if err != nil {
				s.done <- i
				return
			}
		}
	})
	return s
}

func (s *sink) bytes(i int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got[i]...)
}

// startWSEcho starts a coder/websocket echo upstream that keeps message
// boundaries and types; it returns its ws:// URL.
func startWSEcho(t testing.TB) string {
	ln := listen(t, "tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}), ReadHeaderTimeout: testWait}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "ws://" + ln.Addr().String() + "/echo"
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// get fetches url (trusting pool for https) and returns status and body.
func get(t testing.TB, url string, pool *x509.CertPool) (int, string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: testWait, Transport: tr}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// echoRoundTrip sends msg on c and reads it back.
func echoRoundTrip(ctx context.Context, c *resume.Conn, msg []byte) error {
	if err := c.WriteMessage(ctx, resume.MessageBinary, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(testWait))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return errors.New("echo mismatch")
	}
	return nil
}

// metricLines returns the non-zero sample lines of the metrics whose names
// contain one of subs, to explain a failure.
func metricLines(body string, subs ...string) string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "#") || strings.HasSuffix(line, " 0") {
			continue
		}
		for _, s := range subs {
			if strings.Contains(line, s) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func resumeCloseStatus(err error) int { return int(resume.CloseStatus(err)) }
