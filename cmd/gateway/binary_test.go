package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/streamtest"
	"github.com/dualgate/dualgate/resume"
)

// proc is the gateway binary running under a test.
type proc struct {
	cmd    *exec.Cmd
	stderr *logBuffer
	exited chan error
	addr   string // from the banner
	key    string // from the banner
	banner []string
}

// buildBinary builds the gateway (without -race: it is the product).
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary starts bin with args and env (added to a minimal
// environment) and waits for its start-up banner.
func startBinary(t testing.TB, bin string, args []string, env ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: new(logBuffer), exited: make(chan error, 1)}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bannerc := make(chan []string, 1)
	var readers sync.WaitGroup
	readers.Go(func() {
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "server key (pin it):") {
				// The certificate banner follows at once; read until a
				// quiet moment is not needed: it is printed in one go.
				for sc.Scan() {
					lines = append(lines, sc.Text())
					if strings.Contains(sc.Text(), "TLS:") && !strings.Contains(sc.Text(), "development CA") {
						break
					}
					if strings.Contains(sc.Text(), "spki-list") {
						break
					}
				}
				bannerc <- lines
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	go func() { readers.Wait(); p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.banner = <-bannerc:
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("gateway exited at start: %v\n%s", err, p.stderr)
	case <-time.After(testWait):
		t.Fatalf("gateway printed no banner\n%s", p.stderr)
	}
	for _, l := range p.banner {
		if a, ok := strings.CutPrefix(l, "Dualgate listening on "); ok {
			p.addr, _, _ = strings.Cut(a, " ")
		}
		if k, ok := strings.CutPrefix(strings.TrimSpace(l), "server key (pin it): "); ok {
			p.key = k
		}
	}
	if p.addr == "" || p.key == "" {
		t.Fatalf("banner without address or key:\n%s", strings.Join(p.banner, "\n"))
	}
	return p
}

// stop sends sig and waits for the exit; it returns the exit error and how
// long the exit took.
func (p *proc) stop(t testing.TB, sig os.Signal, limit time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return err, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("gateway did not exit within %v of %v\n%s", limit, sig, p.stderr)
	}
	return nil, 0
}

// TestBinaryDefault is the README's first command: the binary with no flags
// at all (HOME and XDG_DATA_HOME in a temporary directory) listens on :8443
// for ws and wss, serves the demo page and /healthz over http and https,
// and echoes on /stream over ws:// and wss:// with the dev CA trusted and
// the printed key pinned.
func TestBinaryDefault(t *testing.T) {
	if ln, err := net.Listen("tcp", ":8443"); err != nil {
		t.Fatalf("port 8443 is busy, so the README's first command cannot be tested here: %v", err)
	} else {
		ln.Close()
	}
	bin := buildBinary(t)
	home := t.TempDir()
	p := startBinary(t, bin, nil, "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "xdg"))
	banner := strings.Join(p.banner, "\n")
	t.Logf("start-up output:\n%s", banner)
	for _, want := range []string{"http://localhost:8443/", "https://localhost:8443/", "ws://localhost:8443/stream", "wss://localhost:8443/stream",
		"builtin:echo", "server key (pin it): ", "CA certificate: " + filepath.Join(home, "xdg", "dualgate", "dev", "ca.pem"), "--ignore-certificate-errors-spki-list="} {
		if !strings.Contains(banner, want) {
			t.Errorf("start-up output lacks %q", want)
		}
	}
	if !strings.HasSuffix(p.addr, ":8443") {
		t.Fatalf("listening on %s, want :8443", p.addr)
	}
	pool := devCAPool(t, filepath.Join(home, "xdg", "dualgate"))
	for _, scheme := range []string{"http", "https"} {
		if code, body := get(t, scheme+"://localhost:8443/", pool); code != 200 || !strings.Contains(body, "<html") || !strings.Contains(body, p.key) {
			t.Errorf("%s GET /: %d\n%.200s", scheme, code, body)
		}
		if code, body := get(t, scheme+"://localhost:8443/healthz", pool); code != 200 || body != "ok\n" {
			t.Errorf("%s GET /healthz: %d %q", scheme, code, body)
		}
	}
	ctx := testCtx(t)
	for _, u := range []string{"ws://localhost:8443/stream", "wss://localhost:8443/stream"} {
		c, err := resume.Dial(ctx, u, dialOpts(pool, p.key))
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", u, err, p.stderr)
		}
		if err := echoRoundTrip(ctx, c, []byte("hello from the README over "+u)); err != nil {
			t.Fatalf("echo over %s: %v", u, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("close %s: %v", u, err)
		}
	}
	if err, _ := p.stop(t, syscall.SIGTERM, testWait); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "gateway: stopped") {
		t.Fatalf("no shutdown log:\n%s", p.stderr)
	}
}

// teeEcho is a TCP echo upstream that records what it received on each
// connection and how the connection ended.
type teeEcho struct {
	addr string
	mu   sync.Mutex
	got  map[int][]byte
	ends map[int]error
	n    int
}

func startTeeEcho(t testing.TB) *teeEcho {
	e := &teeEcho{got: map[int][]byte{}, ends: map[int]error{}}
	ln := listen(t, "tcp", "127.0.0.1:0")
	e.addr = ln.Addr().String()
	serveListener(t, ln, func(c net.Conn) {
		e.mu.Lock()
		i := e.n
		e.n++
		e.mu.Unlock()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				e.mu.Lock()
				e.got[i] = append(e.got[i], buf[:n]...)
				e.mu.Unlock()
				if _, werr := c.Write(buf[:n]); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				e.mu.Lock()
				e.ends[i] = err
				e.mu.Unlock()
				return
			}
		}
	})
	return e
}

// TestBinaryDrain sends SIGTERM to the binary while sessions over ws, wss
// and tls stream data through it: every client is told 1001, everything
// the upstream received is exactly what the clients sent (no byte lost in
// the middle, none duplicated), every byte a client had echoed back had
// reached the upstream, the upstreams are closed cleanly (EOF), and the
// process exits 0 within -drain-timeout.
func TestBinaryDrain(t *testing.T) {
	bin := buildBinary(t)
	up := startTeeEcho(t)
	dir := t.TempDir()
	const drain = 20 * time.Second
	p := startBinary(t, bin, []string{"-listen", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data"), "-route", "/echo=tcp://" + up.addr,
		"-drain-timeout", drain.String(), "-sniff-timeout=50s"})
	pool := devCAPool(t, filepath.Join(dir, "data"))
	ctx := testCtx(t)
	urls := []string{"ws://" + p.addr + "/echo", "wss://" + p.addr + "/echo", "tls://" + p.addr, "ws://" + p.addr + "/echo", "wss://" + p.addr + "/echo"}
	type result struct {
		sent, echoed int64
		seed         uint64
		err          error
	}
	results := make([]result, len(urls))
	var started, wg sync.WaitGroup
	for i, u := range urls {
		c, err := resume.Dial(ctx, u, dialOpts(pool, p.key))
		if err != nil {
			t.Fatalf("dial %s: %v", u, err)
		}
		seed := mrand.Uint64()
		results[i].seed = seed
		started.Add(1)
		wg.Go(func() {
			defer c.CloseWithError(resume.CloseNormal, "")
			go func() { // writer: until the session ends
				_, _ = streamtest.NewStream(seed, -1).WriteTo(c)
			}()
			want := streamtest.NewChecker(seed, -1)
			buf := make([]byte, 64<<10)
			var echoed int64
			once := false
			for {
				c.SetReadDeadline(time.Now().Add(testWait))
				n, err := c.Read(buf)
				if n > 0 {
					if off, ok := want.Check(buf[:n]); !ok {
						results[i].err = fmt.Errorf("echo mismatch at %d", off)
						return
					}
					echoed += int64(n)
					if !once && echoed > 256<<10 {
						once = true
						started.Done()
					}
				}
				if err != nil {
					if !once {
						started.Done()
					}
					results[i].echoed, results[i].err = echoed, err
					return
				}
			}
		})
	}
	started.Wait() // every session is streaming
	err, took := p.stop(t, syscall.SIGTERM, drain+testWait)
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	t.Logf("SIGTERM to exit: %v (-drain-timeout %v)", took.Round(time.Millisecond), drain)
	if took > drain+5*time.Second {
		t.Errorf("drain took %v, more than -drain-timeout %v", took, drain)
	}
	wg.Wait()
	// Upstream connections are matched to sessions by content.
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.n != len(urls) {
		t.Fatalf("upstream saw %d connections, want %d", up.n, len(urls))
	}
	for i, r := range results {
		if code := resume.CloseStatus(r.err); code != resume.CloseGoingAway {
			t.Errorf("session %d (%s): ended with %v, want 1001 going away", i, urls[i], r.err)
		}
		matched := false
		for j := range up.n {
			got := up.got[j]
			if len(got) == 0 {
				continue
			}
			if _, ok := streamtest.NewChecker(r.seed, -1).Check(got); !ok {
				continue
			}
			matched = true
			if int64(len(got)) < r.echoed {
				t.Errorf("session %d: upstream has %d bytes but the client had %d echoed", i, len(got), r.echoed)
			}
			if !errors.Is(up.ends[j], io.EOF) {
				t.Errorf("session %d: upstream connection ended with %v, want a clean EOF", i, up.ends[j])
			}
			t.Logf("session %d (%s): upstream received %d bytes, exactly the sent stream's prefix; client had %d echoed; ended %v", i, urls[i], len(got), r.echoed, r.err)
		}
		if !matched {
			t.Errorf("session %d: no upstream connection holds a prefix of its stream (bytes lost or corrupted)", i)
		}
	}
	if !strings.Contains(p.stderr.String(), "gateway: draining") {
		t.Errorf("no drain log:\n%s", p.stderr)
	}
}

// writeCert writes a self-signed certificate for localhost and 127.0.0.1
// with the given common name, returning its parsed form.
func writeCert(t testing.TB, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(mrand.Int64()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Key first: the gateway may poll between the two writes; a mismatched
	// pair is refused and the old one kept, which is also fine.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// servedCert returns the certificate a new TLS handshake gets.
func servedCert(t testing.TB, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testWait}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestBinaryReload changes the config file's routes and the files-mode
// certificate, sends SIGHUP, and checks that a live session keeps working,
// the new route works, and new handshakes get the new certificate.
func TestBinaryReload(t *testing.T) {
	bin := buildBinary(t)
	echo1, echo2 := startTCPEcho(t), startTeeEcho(t)
	dir := t.TempDir()
	certFile, keyFile, conf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "gateway.toml")
	certA := writeCert(t, certFile, keyFile, "cert A")
	writeConf := func(routes ...string) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "tls = \"files\"\ncert = %q\nkey = %q\ncert-poll-interval = \"-1s\"\nroute = [", certFile, keyFile)
		for i, r := range routes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", r)
		}
		b.WriteString("]\n")
		if err := os.WriteFile(conf, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("/a=tcp://" + echo1)
	p := startBinary(t, bin, []string{"-listen", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data"), "-config", conf, "-sniff-timeout=50s"})
	if got := servedCert(t, p.addr); !got.Equal(certA) {
		t.Fatalf("served %q, want cert A", got.Subject.CommonName)
	}
	poolA := x509.NewCertPool()
	poolA.AddCert(certA)
	ctx := testCtx(t)
	live, err := resume.Dial(ctx, "wss://"+p.addr+"/a", dialOpts(poolA, p.key))
	if err != nil {
		t.Fatal(err)
	}
	defer live.CloseWithError(resume.CloseNormal, "")
	if err := echoRoundTrip(ctx, live, []byte("before reload")); err != nil {
		t.Fatal(err)
	}
	// The new route does not exist yet.
	if c, err := resume.Dial(ctx, "ws://"+p.addr+"/b", dialOpts(nil, p.key)); err == nil {
		c.CloseWithError(resume.CloseNormal, "")
		t.Fatal("route /b served before the reload")
	}

	certB := writeCert(t, certFile, keyFile, "cert B")
	writeConf("/a=tcp://"+echo1, "/b=tcp://"+echo2.addr)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(p.stderr.String(), "gateway: reload: routes") }, "the reload logged")
	t.Logf("reload log:\n%s", grepLines(p.stderr.String(), "reload"))

	if err := echoRoundTrip(ctx, live, []byte("after reload, same session")); err != nil {
		t.Fatalf("live session after the reload: %v", err)
	}
	if got := servedCert(t, p.addr); !got.Equal(certB) {
		t.Fatalf("served %q after the reload, want cert B", got.Subject.CommonName)
	}
	poolB := x509.NewCertPool()
	poolB.AddCert(certB)
	c, err := resume.Dial(ctx, "wss://"+p.addr+"/b", dialOpts(poolB, p.key))
	if err != nil {
		t.Fatalf("new route after the reload: %v\n%s", err, p.stderr)
	}
	if err := echoRoundTrip(ctx, c, []byte("new route")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	echo2.mu.Lock()
	got := string(echo2.got[0])
	echo2.mu.Unlock()
	if got != "new route" {
		t.Fatalf("the new route's upstream got %q", got)
	}
	if err := live.Close(); err != nil {
		t.Fatalf("live session close: %v", err)
	}
	if err, _ := p.stop(t, syscall.SIGTERM, testWait); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
