package proxytest

import (
	"bufio"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Implementation constants of the CONNECT proxy.
const (
	maxRequestHeaderBytes = 64 << 10
	requestReadTimeout    = 30 * time.Second
	upstreamDialTimeout   = 30 * time.Second
)

// ConnectProxyOptions configures StartConnectProxy. A nil
// *ConnectProxyOptions means an open proxy that relays every CONNECT.
type ConnectProxyOptions struct {
	// Username and Password, when Username is not empty, are the Basic
	// credentials the proxy requires; a request without them or with
	// others gets 407. The returned URL carries them.
	Username, Password string
	// Hosts maps requested authorities ("name:port") to the address the
	// proxy really dials, as a proxy's own name resolution would; others
	// are dialled as requested. It lets tests use non-loopback names,
	// which proxy selection from the environment never bypasses.
	Hosts map[string]string
	// Response, when not empty, is written verbatim in answer to every
	// request instead of relaying, and the connection is then closed: a
	// way to inject error statuses and garbage.
	Response string
	// Stall makes the proxy read each request and then never answer, until
	// the client gives up or the test ends.
	Stall bool
	// Early is sent right after the "200" header, before any relayed byte,
	// as a proxy that flushes tunnel data with its reply would.
	Early []byte
}

// ConnectProxy is a running HTTP CONNECT proxy on 127.0.0.1. Its fields are
// read-only; its methods are safe for concurrent use. StartConnectProxy
// registers its shutdown with tb.Cleanup.
type ConnectProxy struct {
	// URL is http://[user:pass@]127.0.0.1:port.
	URL *url.URL
	// Addr is the host:port the proxy listens on.
	Addr string

	opts     ConnectProxyOptions
	ln       net.Listener
	requests counter
	tunnels  atomic.Int64
	wg       sync.WaitGroup
	conns    struct {
		sync.Mutex
		closed bool
		set    map[net.Conn]struct{}
	}
}

// StartConnectProxy starts an HTTP CONNECT proxy on a free 127.0.0.1 port
// and stops it in tb.Cleanup, closing every tunnel and waiting for its
// goroutines.
func StartConnectProxy(tb testing.TB, opts *ConnectProxyOptions) *ConnectProxy {
	tb.Helper()
	p := &ConnectProxy{}
	if opts != nil {
		p.opts = *opts
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxytest: listen: %v", err)
	}
	p.ln = ln
	p.Addr = ln.Addr().String()
	p.URL = &url.URL{Scheme: "http", Host: p.Addr}
	if p.opts.Username != "" {
		p.URL.User = url.UserPassword(p.opts.Username, p.opts.Password)
	}
	p.conns.set = make(map[net.Conn]struct{})
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.close)
	return p
}

// Requests returns how many CONNECT requests the proxy has read.
func (p *ConnectProxy) Requests() int { return p.requests.load() }

// WaitRequests waits until the proxy has read at least n requests, failing
// the test after 30 s.
func (p *ConnectProxy) WaitRequests(tb testing.TB, n int) {
	tb.Helper()
	p.requests.wait(tb, n, func(got int) string {
		return fmt.Sprintf("CONNECT proxy read %d requests, want at least %d", got, n)
	})
}

// Tunnels returns how many tunnels the proxy has opened to a target. A tunnel
// is counted before the proxy sends its 200 reply, so the count already
// includes a client's tunnel when that client's dial returns.
func (p *ConnectProxy) Tunnels() int { return int(p.tunnels.Load()) }

func (p *ConnectProxy) close() {
	p.ln.Close()
	p.conns.Lock()
	p.conns.closed = true
	for c := range p.conns.set {
		c.Close()
	}
	p.conns.Unlock()
	p.wg.Wait()
}

// track registers c to be closed by close; it reports false (and closes c)
// once the proxy is shutting down.
func (p *ConnectProxy) track(c net.Conn) bool {
	p.conns.Lock()
	defer p.conns.Unlock()
	if p.conns.closed {
		c.Close()
		return false
	}
	p.conns.set[c] = struct{}{}
	return true
}

func (p *ConnectProxy) untrack(c net.Conn) {
	p.conns.Lock()
	delete(p.conns.set, c)
	p.conns.Unlock()
	c.Close()
}

func (p *ConnectProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed by close(); loopback Accept has no temporary errors worth retrying here
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.handle(c)
		}()
	}
}

func (p *ConnectProxy) handle(c net.Conn) {
	lr := &io.LimitedReader{R: c, N: maxRequestHeaderBytes}
	br := bufio.NewReader(lr)
	c.SetReadDeadline(time.Now().Add(requestReadTimeout))
	req, err := http.ReadRequest(br)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		return
	}
	p.requests.add()
	c.SetReadDeadline(time.Time{})
	lr.N = math.MaxInt64
	switch {
	case p.opts.Stall:
		io.Copy(io.Discard, c) // until the client or close() ends it
		return
	case p.opts.Response != "":
		io.WriteString(c, p.opts.Response)
		return
	case req.Method != http.MethodConnect:
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
		return
	case !p.authorized(req):
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxytest\"\r\nConnection: close\r\n\r\n")
		return
	}
	target := req.Host
	if mapped, ok := p.opts.Hosts[target]; ok {
		target = mapped
	}
	up, err := net.DialTimeout("tcp", target, upstreamDialTimeout)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	p.tunnels.Add(1)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if len(p.opts.Early) > 0 {
		if _, err := c.Write(p.opts.Early); err != nil {
			return
		}
	}
	relay(c, br, up)
}

// relay copies both ways, passing half-closes on, until both directions end.
func relay(client net.Conn, clientReader io.Reader, up net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(up, clientReader)
		closeWrite(up)
	}()
	io.Copy(client, up)
	closeWrite(client)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}

func (p *ConnectProxy) authorized(req *http.Request) bool {
	if p.opts.Username == "" {
		return true
	}
	user, pass, ok := parseBasic(req.Header.Get("Proxy-Authorization"))
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(p.opts.Username))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(p.opts.Password))
	return userOK&passOK == 1
}

func parseBasic(h string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	for i, c := range b {
		if c == ':' {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return "", "", false
}
