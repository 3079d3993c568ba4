package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/testenv"
)

const testWait = 60 * time.Second // generous: the machine is shared

func newTestGateway(t *testing.T, args ...string) *gateway {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-listen", "127.0.0.1:0"}, args...), envMap(map[string]string{"HOME": t.TempDir()}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := g.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return g
}

// client is one kind of client of the mixed test.
type client struct {
	name string
	run  func(ctx context.Context, addr string, pool *x509.CertPool) error
}

func httpGet(version uint16, scheme string) func(context.Context, string, *x509.CertPool) error {
	return func(ctx context.Context, addr string, pool *x509.CertPool) error {
		tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: version, MaxVersion: version}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, "GET", scheme+"://"+addr+"/healthz", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "ok\n" {
			return fmt.Errorf("body %q, %v", b, err)
		}
		if scheme == "https" && resp.TLS.Version != version {
			return fmt.Errorf("TLS version %x", resp.TLS.Version)
		}
		return nil
	}
}

func wsEcho(scheme string) func(context.Context, string, *x509.CertPool) error {
	return func(ctx context.Context, addr string, pool *x509.CertPool) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		defer tr.CloseIdleConnections()
		c, _, err := websocket.Dial(ctx, scheme+"://"+addr+"/echo", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			return err
		}
		defer c.CloseNow()
		msg := []byte("hello over " + scheme)
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != string(msg) {
			return fmt.Errorf("echo %q, %v", got, err)
		}
		return c.Close(websocket.StatusNormalClosure, "")
	}
}

var mixedClients = []client{
	{"http", httpGet(0, "http")},
	{"tls1.2", httpGet(tls.VersionTLS12, "https")},
	{"tls1.3", httpGet(tls.VersionTLS13, "https")},
	{"ws", wsEcho("ws")},
	{"wss", wsEcho("wss")},
}

func certPool(g *gateway) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(g.tls.Certificates[0].Leaf)
	return pool
}

// TestHeavyMixedClients starts many clients of every kind at once against
// one port: Go HTTP, Go TLS 1.2 and 1.3, coder/websocket over ws:// and
// wss://. Every one must be served.
func TestHeavyMixedClients(t *testing.T) {
	n := testenv.Scale(1000, 200)
	// A generous sniff deadline: under -race on a loaded machine a client can
	// take seconds to build its ClientHello (ML-KEM key generation), and a
	// TLS client silent past the deadline before any handshake completed
	// from its IP is, by design, sent to plain HTTP (the ambiguous path,
	// tested on its own in tlsmux and listener).
	g := newTestGateway(t, "-max-conns-per-ip=-1", "-max-conns=-1", "-tls-handshake-timeout=50s", "-sniff-timeout=50s")
	addr, pool := g.addr().String(), certPool(g)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = mixedClients[i%len(mixedClients)].run(ctx, addr, pool)
		})
	}
	close(start)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 10 {
				t.Errorf("client %d (%s): %v", i, mixedClients[i%len(mixedClients)].name, err)
			}
		}
	}
	if failed > 0 {
		t.Logf("server-side view:\n%s", metricLines(get(t, "http://"+addr+"/metrics"), "rejections", "outcomes", "failures", "handshakes_total"))
		t.Fatalf("%d of %d clients failed", failed, n)
	}
	// Every kind shows in the metrics.
	body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{`dualgate_listener_connections_total{kind="tls",layer="tcp"}`, `dualgate_tls_handshakes_total{alpn="",version="TLS 1.2"}`,
		`dualgate_listener_connections_total{kind="http",layer="tls"}`, "go_goroutines", "process_open_fds"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestMixedClientsOnce(t *testing.T) {
	g := newTestGateway(t, "-sniff-timeout=50s")
	for _, c := range mixedClients {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		if err := c.run(ctx, g.addr().String(), certPool(g)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		cancel()
	}
}

// TestShutdownClosesWebSockets checks that shutdown ends an open echo
// WebSocket with "going away" instead of waiting for it.
func TestShutdownClosesWebSockets(t *testing.T) {
	cfg, err := parseConfig([]string{"-listen", "127.0.0.1:0"}, envMap(map[string]string{"HOME": t.TempDir()}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.serve() }()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+g.addr().String()+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()
	if err := g.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := <-readErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read after shutdown: %v", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: testWait, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestBinary builds and runs the real gateway with no flags (the port comes
// from DUALGATE_LISTEN, so that the test can use a free one), reads the
// URLs it prints, does a ws:// and a wss:// echo, and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	// Environment only, no flags. A long sniff deadline because this test's
	// own (race-built) clients can be slow to send their ClientHello.
	cmd.Env = append(os.Environ(), "DUALGATE_LISTEN=127.0.0.1:0", "DUALGATE_SNIFF_TIMEOUT=60s", "XDG_DATA_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	urls := make(chan []string, 1)
	go func() {
		var found []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "try: "); ok {
				found = append(found, u)
				if len(found) == 2 {
					urls <- found
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var u []string
	select {
	case u = <-urls:
	case err := <-exited:
		stopped = true
		t.Fatalf("gateway exited early: %v\n%s", err, stderr.String())
	case <-time.After(testWait):
		t.Fatalf("gateway printed no URLs\n%s", stderr.String())
	}
	if !strings.HasPrefix(u[0], "ws://127.0.0.1:") || !strings.HasPrefix(u[1], "wss://127.0.0.1:") {
		t.Fatalf("URLs %q", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var leaf *x509.Certificate
	tlsCfg := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		leaf = cs.PeerCertificates[0]
		return nil
	}}
	for _, url := range u {
		tr := &http.Transport{TLSClientConfig: tlsCfg}
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", url, err, stderr.String())
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(url)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.Read(ctx); err != nil || string(b) != url {
			t.Fatalf("echo on %s: %q, %v", url, b, err)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		tr.CloseIdleConnections()
	}
	if leaf == nil || leaf.VerifyHostname("localhost") != nil {
		t.Fatal("wss certificate is not for localhost")
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u[0], "ws://"), "/echo")
	if body := get(t, "https://"+host+"/metrics"); !strings.Contains(body, "dualgate_tls_handshakes_total") {
		t.Fatal("metrics lack dualgate_tls_handshakes_total")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("gateway exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(testWait):
		t.Fatalf("gateway did not stop on SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "gateway: stopped") {
		t.Fatalf("no shutdown log:\n%s", stderr.String())
	}
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
